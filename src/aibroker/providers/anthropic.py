"""Anthropic Messages API (POST /v1/messages), translated to and from OpenAI shapes.

OpenAI system/developer messages become the top-level `system`; tool calls become
tool_use blocks and tool messages user tool_result blocks; consecutive turns of the
same role are merged (Anthropic requires alternation). Prompt-caching counts are
reported as OpenAI usage: prompt_tokens = input + cache read + cache creation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aibroker.providers import translate as t
from aibroker.providers.base import Call, Result, Usage
from aibroker.providers.errors import (
    ProviderBadRequest,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
    from_status,
)
from aibroker.providers.upstream import (
    Headers,
    Upstream,
    json_error,
    retry_after_seconds,
    sse_data,
)

API_VERSION = "2023-06-01"
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
          "pause_turn": "stop", "refusal": "content_filter"}


# -- request ---------------------------------------------------------------------------


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            block: dict[str, Any] = {"type": "text", "text": part.get("text", "")}
        elif kind == "image_url":
            url = t.image_url_of(part)
            inline = t.parse_data_url(url)
            source = (
                {"type": "base64", "media_type": inline[0], "data": inline[1]} if inline else {"type": "url", "url": url}
            )
            block = {"type": "image", "source": source}
        else:
            raise ProviderBadRequest(f"Anthropic cannot take content parts of type {kind!r}")
        if part.get("cache_control"):  # prompt caching marks pass through
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _turn(message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    role = message.get("role")
    if role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id", "")}
        content = message.get("content")
        result["content"] = content if isinstance(content, str) else _content_blocks(content)
        return "user", [result]
    blocks = _content_blocks(message.get("content"))
    if role == "assistant":
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
                           "input": t.parse_arguments(function.get("arguments"))})
        return "assistant", blocks
    return "user", blocks


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None and parallel is None:
        return None
    if isinstance(choice, dict):
        result: dict[str, Any] = {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    else:
        result = {"type": {"required": "any", "none": "none"}.get(choice or "auto", "auto")}
    if parallel is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result


def to_anthropic(call: Call) -> dict[str, Any]:
    body = call.body
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in body.get("messages") or []:
        if message.get("role") in ("system", "developer"):
            system.extend(_content_blocks(message.get("content")))
            continue
        role, blocks = _turn(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # Anthropic requires alternating roles
        else:
            turns.append({"role": role, "content": blocks})
    limit = t.output_limit(body)
    if limit is None:
        raise ProviderBadRequest("Anthropic requires max_tokens")
    request: dict[str, Any] = {"model": call.model.name, "max_tokens": limit, "messages": turns}
    if system:
        plain = all(set(b) == {"type", "text"} for b in system)
        request["system"] = "\n\n".join(b["text"] for b in system) if plain else system
    if body.get("temperature") is not None:
        request["temperature"] = min(float(body["temperature"]), 1.0)  # Anthropic's range is 0..1
    if body.get("top_p") is not None:
        request["top_p"] = body["top_p"]
    if stops := t.stop_list(body):
        request["stop_sequences"] = stops
    if functions := t.function_tools(body):
        request["tools"] = [
            {"name": f["name"], "description": f.get("description", ""),
             "input_schema": f.get("parameters") or {"type": "object", "properties": {}}}
            for f in functions
        ]
        if choice := _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls")):
            request["tool_choice"] = choice
    if body.get("user"):
        request["metadata"] = {"user_id": str(body["user"])}
    return request


# -- response --------------------------------------------------------------------------


def usage_from(data: dict[str, Any] | None) -> Usage:
    data = data or {}
    fresh = int(data.get("input_tokens") or 0)
    read = int(data.get("cache_read_input_tokens") or 0)
    written = int(data.get("cache_creation_input_tokens") or 0)
    return Usage(input_tokens=fresh + read + written, output_tokens=int(data.get("output_tokens") or 0),
                 cached_tokens=read, cache_write_tokens=written)


def from_anthropic(data: dict[str, Any], model: str, provider: str) -> Result:
    if data.get("type") != "message" or not isinstance(data.get("content"), list):
        raise ProviderBadResponse(f"{provider} answered without a message", provider=provider)
    texts, calls = [], []
    for block in data["content"]:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append(t.tool_call(block.get("id", ""), block.get("name", ""), t.arguments_json(block.get("input"))))
    usage = usage_from(data.get("usage"))
    finish = FINISH.get(data.get("stop_reason") or "end_turn", "stop")
    body = t.completion(model=model, content="".join(texts) if texts or not calls else None, tool_calls=calls,
                        finish_reason=finish, usage=usage, response_id=data.get("id"))
    return Result(body=body, usage=usage)


def stream_error(error: dict[str, Any] | None, provider: str) -> ProviderError:
    """An `error` event inside a stream (the HTTP status was already 200)."""
    error = error or {}
    kind, message = error.get("type", ""), error.get("message") or "stream error"
    if kind == "rate_limit_error":
        return ProviderRateLimited(message, provider=provider)
    if kind in ("overloaded_error", "api_error"):
        return ProviderUnavailable(message, provider=provider)
    if kind == "invalid_request_error":
        return ProviderBadRequest(message, provider=provider)
    return ProviderBadResponse(message, provider=provider)


class _StreamState:
    """Anthropic stream events in, OpenAI chunks out."""

    def __init__(self, model: str, provider: str) -> None:
        self.provider = provider
        self.model = model
        self.chunks: t.ChunkMaker | None = None
        self.usage_data: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index
        self.finish: str | None = None
        self.stopped = False

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "error":
            raise stream_error(event.get("error"), self.provider)
        if kind == "message_start":
            message = event.get("message") or {}
            self.chunks = t.ChunkMaker(self.model, message.get("id"))
            self.usage_data.update(message.get("usage") or {})
            return [self.chunks.delta({"role": "assistant", "content": ""})]
        if self.chunks is None:
            if kind == "ping":
                return []
            raise ProviderBadResponse(f"{self.provider} stream did not start with message_start", provider=self.provider)
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tool_index.setdefault(event.get("index", 0), len(self.tool_index))
                start = {"index": index, **t.tool_call(block.get("id", ""), block.get("name", ""), "")}
                return [self.chunks.delta({"tool_calls": [start]})]
            if block.get("type") == "text" and block.get("text"):
                return [self.chunks.delta({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self.chunks.delta({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(event.get("index", 0), 0)
                piece = {"index": index, "function": {"arguments": delta.get("partial_json", "")}}
                return [self.chunks.delta({"tool_calls": [piece]})]
            return []  # thinking / signature deltas have no OpenAI chunk form
        if kind == "message_delta":
            # message_delta usage counts are cumulative: they replace message_start's.
            self.usage_data.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            reason = (event.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish = FINISH.get(reason, "stop")
            return []
        if kind == "message_stop":
            self.stopped = True
            usage = usage_from(self.usage_data)
            return [self.chunks.delta({}, self.finish or "stop"), self.chunks.usage(usage)]
        return []  # ping, content_block_stop, unknown future events


# -- the adapter -----------------------------------------------------------------------


class AnthropicProvider:
    def __init__(self, name: str, base_url: str, api_key: str | None, *, timeout: float, connect_timeout: float) -> None:
        self.name = name
        self._api_key = api_key
        self._http = Upstream(name, base_url, timeout=timeout, connect_timeout=connect_timeout, on_error=self._fail)

    def _fail(self, status: int, content: bytes, headers: Headers) -> ProviderError:
        data = json_error(content)
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        return from_status(status, message or f"upstream answered HTTP {status}", provider=self.name,
                           retry_after=retry_after_seconds(headers))

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {"content-type": "application/json", "anthropic-version": API_VERSION, **call.extra_headers}
        key = call.api_key or self._api_key
        if key:
            headers["x-api-key"] = key
        return headers

    async def chat(self, call: Call) -> Result:
        data = await self._http.request_json("POST", "/v1/messages", body=to_anthropic(call), headers=self._headers(call))
        return from_anthropic(data, call.model.name, self.name)

    async def stream_chat(self, call: Call) -> AsyncIterator[dict[str, Any]]:
        body = {**to_anthropic(call), "stream": True}
        state = _StreamState(call.model.name, self.name)
        async with self._http.stream("/v1/messages", body=body, headers=self._headers(call)) as lines:
            async for _event, data in sse_data(lines):
                for chunk in state.feed(self._http.load_event(data)):
                    yield chunk
                if state.stopped:
                    return
        raise ProviderBadResponse(f"{self.name} stream ended before message_stop", provider=self.name)

    async def count_tokens(self, call: Call) -> int:
        """Anthropic's token counting (free): the Messages request without max_tokens or sampling."""
        counted = {**call.body, "max_tokens": 1}
        request = to_anthropic(Call(call.model, counted, call.api_key, call.extra_headers))
        kept = {k: v for k, v in request.items() if k in ("model", "messages", "system", "tools", "tool_choice")}
        data = await self._http.request_json("POST", "/v1/messages/count_tokens", body=kept, headers=self._headers(call))
        tokens = data.get("input_tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, int):
            raise ProviderBadResponse(f"{self.name} count_tokens answered without input_tokens", provider=self.name)
        return tokens

    async def embed(self, call: Call) -> Result:
        raise ProviderBadRequest(
            f"Anthropic has no embeddings API: '{call.model.id}' cannot embed. Use an embedding model "
            "such as 'openai/text-embedding-3-small' or 'gemini/gemini-embedding-001'.",
            provider=self.name,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

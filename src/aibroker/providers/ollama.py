"""Ollama's native API: /api/chat (NDJSON stream or one JSON object), /api/embed, and
/api/tags for discovering the models a local server has pulled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aibroker.catalog.registry import CHAT, EMBEDDING, ModelEntry
from aibroker.kit.ids import new_id
from aibroker.providers import translate as t
from aibroker.providers.base import Call, Result, Usage
from aibroker.providers.errors import (
    ProviderBadRequest,
    ProviderBadResponse,
    ProviderError,
    from_status,
)
from aibroker.providers.upstream import (
    Headers,
    Upstream,
    json_error,
    retry_after_seconds,
)

FINISH = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}
EMBEDDING_FAMILIES = {"bert", "nomic-bert"}
DISCOVERY_TIMEOUT_SECONDS = 3.0


def _message(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    role = message.get("role")
    if role == "developer":
        role = "system"
    content = message.get("content")
    out: dict[str, Any] = {"role": role, "content": t.text_of(content)}
    images = []
    for part in content if isinstance(content, list) else []:
        if part.get("type") == "image_url":
            inline = t.parse_data_url(t.image_url_of(part))
            if inline is None:
                raise ProviderBadRequest("Ollama takes images as base64 data URLs only, not links")
            images.append(inline[1])
    if images:
        out["images"] = images
    if role == "assistant" and message.get("tool_calls"):
        out["tool_calls"] = [
            {"function": {"name": (c.get("function") or {}).get("name", ""),
                          "arguments": t.parse_arguments((c.get("function") or {}).get("arguments"))}}
            for c in message["tool_calls"]
        ]
    if role == "tool":
        out["tool_name"] = names.get(message.get("tool_call_id", ""), message.get("name", ""))
    return out


def to_ollama(call: Call, *, stream: bool) -> dict[str, Any]:
    body = call.body
    messages = body.get("messages") or []
    names = t.tool_names_by_id(messages)
    options: dict[str, Any] = {}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("seed", "seed"),
                         ("presence_penalty", "presence_penalty"), ("frequency_penalty", "frequency_penalty")):
        if body.get(ours) is not None:
            options[theirs] = body[ours]
    if (limit := t.output_limit(body)) is not None:
        options["num_predict"] = limit
    if stops := t.stop_list(body):
        options["stop"] = stops
    request: dict[str, Any] = {"model": call.model.name, "messages": [_message(m, names) for m in messages],
                               "stream": stream}
    if options:
        request["options"] = options
    if body.get("tools"):
        request["tools"] = [{"type": "function", "function": f} for f in t.function_tools(body)]
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_object":
        request["format"] = "json"
    elif fmt.get("type") == "json_schema" and (fmt.get("json_schema") or {}).get("schema"):
        request["format"] = fmt["json_schema"]["schema"]
    return request


def usage_from(data: dict[str, Any]) -> Usage:
    return Usage(input_tokens=int(data.get("prompt_eval_count") or 0), output_tokens=int(data.get("eval_count") or 0))


def _tool_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        t.tool_call(new_id("call"), (c.get("function") or {}).get("name", ""),
                    t.arguments_json((c.get("function") or {}).get("arguments")))
        for c in message.get("tool_calls") or []
    ]


def _finish(data: dict[str, Any], any_calls: bool) -> str:
    return "tool_calls" if any_calls else FINISH.get(data.get("done_reason") or "stop", "stop")


def discovered_entry(provider: str, model: dict[str, Any]) -> ModelEntry:
    """A pulled model the catalog does not list: served at zero cost, still recorded."""
    name = model.get("name") or model.get("model") or ""
    details = model.get("details") or {}
    families = {details.get("family"), *(details.get("families") or [])}
    kind = EMBEDDING if "embed" in name or families & EMBEDDING_FAMILIES else CHAT
    return ModelEntry(id=f"{provider}/{name}", provider=provider, name=name, kind=kind,
                      context_length=32768, max_output_tokens=0 if kind == EMBEDDING else 8192,
                      capabilities=frozenset() if kind == EMBEDDING else frozenset({"streaming", "tools", "json"}))


class OllamaProvider:
    def __init__(self, name: str, base_url: str, api_key: str | None, *, timeout: float, connect_timeout: float) -> None:
        self.name = name
        self._api_key = api_key  # Ollama has no auth; a key is sent for servers behind a proxy
        self._http = Upstream(name, base_url, timeout=timeout, connect_timeout=connect_timeout, on_error=self._fail)

    def _fail(self, status: int, content: bytes, headers: Headers) -> ProviderError:
        data = json_error(content)
        message = data.get("error") if isinstance(data, dict) else None
        return from_status(status, str(message or f"upstream answered HTTP {status}"), provider=self.name,
                           retry_after=retry_after_seconds(headers))

    def _headers(self, call: Call | None = None) -> dict[str, str]:
        headers = {"content-type": "application/json", **(call.extra_headers if call else {})}
        key = (call.api_key if call else None) or self._api_key
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    async def chat(self, call: Call) -> Result:
        data = await self._http.request_json("POST", "/api/chat", body=to_ollama(call, stream=False), headers=self._headers(call))
        message = data.get("message")
        if not isinstance(message, dict):
            raise ProviderBadResponse(f"{self.name} answered without a message", provider=self.name)
        calls = _tool_calls(message)
        usage = usage_from(data)
        content = message.get("content") or (None if calls else "")
        body = t.completion(model=call.model.name, content=content, tool_calls=calls,
                            finish_reason=_finish(data, bool(calls)), usage=usage)
        return Result(body=body, usage=usage)

    async def stream_chat(self, call: Call) -> AsyncIterator[dict[str, Any]]:
        chunks = t.ChunkMaker(call.model.name)
        calls_seen = 0
        async with self._http.stream("/api/chat", body=to_ollama(call, stream=True), headers=self._headers(call)) as lines:
            yield chunks.delta({"role": "assistant", "content": ""})
            async for line in lines:
                if not line.strip():
                    continue
                data = self._http.load_event(line)
                if data.get("error"):
                    raise ProviderBadResponse(f"{self.name}: {data['error']}", provider=self.name)
                message = data.get("message") or {}
                if message.get("content"):
                    yield chunks.delta({"content": message["content"]})
                for tool_call in _tool_calls(message):
                    yield chunks.delta({"tool_calls": [{"index": calls_seen, **tool_call}]})
                    calls_seen += 1
                if data.get("done"):
                    yield chunks.delta({}, _finish(data, calls_seen > 0))
                    yield chunks.usage(usage_from(data))
                    return
        raise ProviderBadResponse(f"{self.name} stream ended before done", provider=self.name)

    async def embed(self, call: Call) -> Result:
        texts = t.require_input_list(call)
        body: dict[str, Any] = {"model": call.model.name, "input": texts}
        if call.body.get("dimensions"):
            body["dimensions"] = call.body["dimensions"]
        data = await self._http.request_json("POST", "/api/embed", body=body, headers=self._headers(call))
        vectors = data.get("embeddings")
        if not isinstance(vectors, list) or len(vectors) != len(texts):
            raise ProviderBadResponse(f"{self.name} answered without embeddings", provider=self.name)
        usage = Usage(input_tokens=int(data.get("prompt_eval_count") or 0))
        return Result(body=t.embeddings_list(call, vectors, usage), usage=usage)

    async def list_models(self) -> list[ModelEntry]:
        """GET /api/tags: the models pulled on the server, as catalog entries at zero cost."""
        data = await self._http.request_json("GET", "/api/tags", headers=self._headers(), timeout=DISCOVERY_TIMEOUT_SECONDS)
        return [discovered_entry(self.name, m) for m in data.get("models") or []]

    async def aclose(self) -> None:
        await self._http.aclose()

"""Fake Anthropic Messages API over real HTTP: JSON, the SSE event stream, error bodies,
prompt caching, tool use, faults.

Deterministic output: "Echo: " + the last user turn's text (or, after a tool_result,
"Echo: " + the result). With tools (and tool_choice not none) the reply is a short text
block and a tool_use of the chosen tool with input {"text": <last user text>}.
Token counts: a message costs its words + 3, an image 10, the system its words; output is
the reply's words (+ TOOL_USE_TOKENS for a tool_use). A prompt with cache_control marks
writes its prefix to the cache on first sight (cache_creation_input_tokens) and reads it
afterwards (cache_read_input_tokens); input_tokens is the rest, as Anthropic reports.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes._server import FakeServer, Fault, StreamCut, StreamFault, count_words, split_chunks

PER_MESSAGE_TOKENS = 3
IMAGE_TOKENS = 10
TOOL_USE_TOKENS = 5
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               500: "api_error", 529: "overloaded_error"}

__all__ = ["FakeAnthropic", "Fault", "StreamFault", "count_input_tokens", "reply_of", "error_body"]


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out = []
    for block in content or []:
        if block.get("type") == "text":
            out.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            out.extend(_texts(block.get("content")))
    return out


def _segment_tokens(content: Any) -> int:
    images = sum(1 for b in content if isinstance(b, dict) and b.get("type") == "image") if isinstance(content, list) else 0
    return sum(count_words(t) for t in _texts(content)) + images * IMAGE_TOKENS


def _segments(body: Mapping[str, Any]) -> list[tuple[int, bool, Any]]:
    """(tokens, has a cache mark, raw) for the system prompt and each message, in order."""
    segments = []
    system = body.get("system")
    if system:
        blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system
        segments.append((_segment_tokens(blocks), any("cache_control" in b for b in blocks), blocks))
    for message in body.get("messages") or []:
        content = message.get("content")
        marked = isinstance(content, list) and any("cache_control" in b for b in content)
        segments.append((_segment_tokens(content) + PER_MESSAGE_TOKENS, marked, message))
    return segments


def count_input_tokens(body: Mapping[str, Any]) -> int:
    """All prompt tokens of a request (what prompt_tokens means in OpenAI terms)."""
    return sum(tokens for tokens, _, _ in _segments(body))


def _cache_prefix(body: Mapping[str, Any]) -> tuple[int, str | None]:
    segments = _segments(body)
    last = max((i for i, (_, marked, _) in enumerate(segments) if marked), default=-1)
    if last < 0:
        return 0, None
    prefix = segments[: last + 1]
    key = hashlib.sha256(json.dumps([raw for _, _, raw in prefix], sort_keys=True).encode()).hexdigest()
    return sum(tokens for tokens, _, _ in prefix), key


def _last_user(body: Mapping[str, Any]) -> dict[str, Any]:
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    return users[-1] if users else {}


def _has_tool_result(message: Mapping[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(b.get("type") == "tool_result" for b in content)


def chosen_tool(body: Mapping[str, Any]) -> str | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if not tools or choice.get("type") == "none" or _has_tool_result(_last_user(body)):
        return None
    return str(choice.get("name") if choice.get("type") == "tool" else tools[0]["name"])


def reply_of(body: Mapping[str, Any]) -> str:
    """The full (untruncated) text reply the fake gives."""
    last = _last_user(body)
    return "Echo: " + " ".join(t for t in _texts(last.get("content")) if t)


def error_body(status: int, message: str | None = None, kind: str | None = None) -> dict[str, Any]:
    kind = kind or ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message or kind.replace("_", " ").capitalize()}}


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body is not valid JSON."
    for field in ("model", "max_tokens", "messages"):
        if field not in body:
            return f"{field}: Field required"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    previous_role, previous = None, None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if role == previous_role:
            return "messages: roles must alternate between \"user\" and \"assistant\""
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if block.get("type") == "tool_result":
                    ids = {b.get("id") for b in (previous or {}).get("content") or [] if isinstance(b, dict)}
                    if block.get("tool_use_id") not in ids:
                        return f"messages.{i}: tool_result block(s) without a matching tool_use"
                if block.get("type") == "image" and block.get("source", {}).get("type") not in ("base64", "url"):
                    return f"messages.{i}: image source type must be base64 or url"
        previous_role, previous = role, message
    return None


class FakeAnthropic(FakeServer):
    thread_name = "fake-anthropic"

    def __init__(self, api_key: str | None = "sk-ant-test") -> None:
        self.api_key = api_key
        self._cache: set[str] = set()
        super().__init__([Route("/v1/messages", self._messages, methods=["POST"]),
                          Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"])])

    def reset(self) -> None:
        super().reset()
        self._cache.clear()

    def _check_auth(self, request: Request) -> Response | None:
        # The API takes x-api-key; newer official SDKs send the key as a Bearer token instead.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = request.headers.get("x-api-key") or (token.strip() if scheme.lower() == "bearer" else "")
        if not key:
            return self._error(401, "x-api-key header is required")
        if self.api_key is not None and key != self.api_key:
            return self._error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return self._error(400, "anthropic-version: header is required")
        return None

    def _error(self, status: int, message: str | None = None, code: str | None = None,
               retry_after: float | None = None) -> Response:
        headers = {"request-id": self._new_id("req")}
        if retry_after is not None:
            headers["retry-after"] = str(math.ceil(retry_after))
        return JSONResponse(error_body(status, message, code), status_code=status, headers=headers)

    async def _messages(self, request: Request) -> Response:
        body, fault, early = await self._admit(request)
        if early is not None:
            return early
        if problem := _validate(body):
            return self._error(400, problem)
        usage = self._usage(body)
        text, tool, stop_reason, output = self._reply(body)
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        if tool:
            blocks.append({"type": "tool_use", "id": self._new_id("toolu"), "name": tool,
                           "input": {"text": " ".join(_texts(_last_user(body).get("content")))}})
        message = {"id": self._new_id("msg"), "type": "message", "role": "assistant", "model": body["model"],
                   "content": blocks, "stop_reason": stop_reason, "stop_sequence": None,
                   "usage": {**usage, "output_tokens": output}}
        if body.get("stream"):
            return StreamingResponse(self._events(message, fault), media_type="text/event-stream")
        return JSONResponse(message)

    async def _count_tokens(self, request: Request) -> Response:
        """Anthropic's token counting: the Messages request without max_tokens -> {"input_tokens"}."""
        body, _fault, early = await self._admit(request)
        if early is not None:
            return early
        if isinstance(body, dict) and (extra := [k for k in ("max_tokens", "stream", "temperature", "top_p") if k in body]):
            return self._error(400, f"{extra[0]}: Extra inputs are not permitted")  # as Anthropic answers
        if problem := _validate({"max_tokens": 1, **body} if isinstance(body, dict) else body):
            return self._error(400, problem)
        return JSONResponse({"input_tokens": count_input_tokens(body)})

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        total = count_input_tokens(body)
        prefix, key = _cache_prefix(body)
        read = written = 0
        if key is not None:
            if key in self._cache:
                read = prefix
            else:
                written = prefix
                self._cache.add(key)
        return {"input_tokens": total - read - written, "cache_creation_input_tokens": written,
                "cache_read_input_tokens": read}

    def _reply(self, body: dict[str, Any]) -> tuple[str, str | None, str, int]:
        tool = chosen_tool(body)
        full = f"Let me use {tool}." if tool else reply_of(body)
        pieces = split_chunks(full)
        limit = int(body["max_tokens"])
        text = "".join(pieces[:limit])
        if len(pieces) > limit:
            return text, None, "max_tokens", limit
        if tool:
            return text, tool, "tool_use", count_words(text) + TOOL_USE_TOKENS
        return text, None, "end_turn", count_words(text)

    async def _events(self, message: dict[str, Any], fault: Fault | None) -> AsyncIterator[bytes]:
        usage = message["usage"]
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start}),
                                                    ("ping", {"type": "ping"})]
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {"type": "text", "text": ""}}))
                events.extend(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                       "delta": {"type": "text_delta", "text": piece}})
                              for piece in split_chunks(block["text"]))
            else:
                events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {**block, "input": {}}}))
                raw = json.dumps(block["input"])
                for piece in (raw[: len(raw) // 2], raw[len(raw) // 2:]):
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                           "delta": {"type": "input_json_delta", "partial_json": piece}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                         "usage": {"output_tokens": usage["output_tokens"]}}))
        events.append(("message_stop", {"type": "message_stop"}))

        cut = fault.cut_after_chunks if fault else None
        error_after = fault.error_event_after if isinstance(fault, StreamFault) else None
        for n, (name, payload) in enumerate(events):
            if n == cut:
                raise StreamCut(f"injected cut after {cut} events")
            if n == error_after:
                kind = fault.error_type or "overloaded_error"  # type: ignore[union-attr]
                yield _sse("error", error_body(529, fault.message, kind))  # type: ignore[union-attr]
                return
            if n == 2 and fault and fault.malformed_json:
                yield b"event: content_block_start\ndata: {not json\n\n"
            yield _sse(name, payload)


def _sse(name: str, payload: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()

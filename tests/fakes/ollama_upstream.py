"""Fake Ollama native API over real HTTP: /api/chat (NDJSON stream or one object),
/api/embed, /api/tags, {"error": ...} bodies, faults.

Deterministic output: "Echo: " + the last user message (after a tool message: "Echo: "
+ its content). With tools the reply is a tool call of the first tool with arguments
{"text": <last user text>}. Tokens: prompt_eval_count = each message's words + 3;
eval_count = the reply's words (TOOL_CALL_TOKENS for a tool call). options.num_predict
truncates (done_reason "length"). Models: the pulled list below ("name" matches "name:latest").
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes._server import FakeServer, Fault, StreamCut, StreamFault, count_words, split_chunks
from tests.fakes.openai_upstream import embed_text

PER_MESSAGE_TOKENS = 3
TOOL_CALL_TOKENS = 5
CREATED_AT = "2025-01-01T00:00:00.000000Z"
DEFAULT_MODELS: dict[str, str] = {  # name -> family
    "llama3.2:latest": "llama",
    "qwen2.5:7b": "qwen2",
    "phi4-mini:latest": "phi3",
    "nomic-embed-text:latest": "nomic-bert",
    "mxbai-embed-large:latest": "bert",
}

__all__ = ["FakeOllama", "Fault", "StreamFault", "count_prompt_tokens", "reply_of", "embed_text"]


def count_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    return sum(count_words(str(m.get("content") or "")) + PER_MESSAGE_TOKENS for m in messages)


def reply_of(messages: list[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") in ("user", "tool"):
            return "Echo: " + str(message.get("content") or "")
    return "Echo: "


class FakeOllama(FakeServer):
    thread_name = "fake-ollama"
    malformed_body = b'{"model": "llama3.2", "message": {"role": '

    def __init__(self, models: Mapping[str, str] = DEFAULT_MODELS) -> None:
        self.models = dict(models)
        super().__init__([
            Route("/api/chat", self._chat, methods=["POST"]),
            Route("/api/embed", self._embed, methods=["POST"]),
            Route("/api/tags", self._tags, methods=["GET"]),
            Route("/api/version", self._version, methods=["GET"]),
        ])

    def _error(self, status: int, message: str | None = None, code: str | None = None,
               retry_after: float | None = None) -> Response:
        headers = {"retry-after": str(int(retry_after))} if retry_after is not None else {}
        return JSONResponse({"error": message or f"fake ollama error {status}"}, status_code=status, headers=headers)

    def _is_stream(self, request: Request, body: Any) -> bool:
        # Ollama streams unless told "stream": false.
        return request.url.path == "/api/chat" and not (isinstance(body, dict) and body.get("stream") is False)

    def _find(self, name: Any) -> str | None:
        if not isinstance(name, str):
            return None
        for candidate in (name, f"{name}:latest"):
            if candidate in self.models:
                return candidate
        return None

    async def _chat(self, request: Request) -> Response:
        body, fault, early = await self._admit(request)
        if early is not None:
            return early
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._error(400, "invalid request: messages are required")
        if self._find(body.get("model")) is None:
            return self._error(404, f'model "{body.get("model")}" not found, try pulling it first')
        messages = body["messages"]
        for message in messages:
            if message.get("role") not in ("system", "user", "assistant", "tool"):
                return self._error(400, f"invalid role: {message.get('role')}")
        tools = body.get("tools") or []
        last_is_tool = bool(messages) and messages[-1].get("role") == "tool"
        tool_calls = []
        done_reason = "stop"
        if tools and not last_is_tool:
            users = [m for m in messages if m.get("role") == "user"]
            text = str(users[-1].get("content") or "") if users else ""
            tool_calls = [{"function": {"name": tools[0]["function"]["name"], "arguments": {"text": text}}}]
            content, output = "", TOOL_CALL_TOKENS
        else:
            content = reply_of(messages)
            limit = (body.get("options") or {}).get("num_predict")
            pieces = split_chunks(content)
            if limit is not None and 0 <= int(limit) < len(pieces):
                content, done_reason = "".join(pieces[: int(limit)]), "length"
            output = count_words(content)
        final = {"model": body["model"], "created_at": CREATED_AT, "done": True, "done_reason": done_reason,
                 "total_duration": 1000, "load_duration": 10, "prompt_eval_count": count_prompt_tokens(messages),
                 "prompt_eval_duration": 100, "eval_count": output, "eval_duration": 500}
        if body.get("stream") is False:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if tool_calls:
                message["tool_calls"] = tool_calls
            return JSONResponse({**final, "message": message})
        return StreamingResponse(self._lines(body["model"], content, tool_calls, final, fault),
                                 media_type="application/x-ndjson")

    async def _lines(self, model: str, content: str, tool_calls: list[dict[str, Any]], final: dict[str, Any],
                     fault: Fault | None) -> AsyncIterator[bytes]:
        lines = [{"model": model, "created_at": CREATED_AT, "message": {"role": "assistant", "content": piece},
                  "done": False} for piece in split_chunks(content)]
        if tool_calls:
            lines.append({"model": model, "created_at": CREATED_AT,
                          "message": {"role": "assistant", "content": "", "tool_calls": tool_calls}, "done": False})
        lines.append({**final, "message": {"role": "assistant", "content": ""}})
        cut = fault.cut_after_chunks if fault else None
        error_after = fault.error_event_after if isinstance(fault, StreamFault) else None
        for n, line in enumerate(lines):
            if n == cut:
                raise StreamCut(f"injected cut after {cut} lines")
            if n == error_after:
                yield (json.dumps({"error": fault.message or "an error was encountered while running the model"})  # type: ignore[union-attr]
                       + "\n").encode()
                return
            if n == 1 and fault and fault.malformed_json:
                yield b"{not json\n"
            yield (json.dumps(line) + "\n").encode()

    async def _embed(self, request: Request) -> Response:
        body, _, early = await self._admit(request)
        if early is not None:
            return early
        body = body if isinstance(body, dict) else {}
        if self._find(body.get("model")) is None:
            return self._error(404, f'model "{body.get("model")}" not found, try pulling it first')
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            return self._error(400, "invalid input type")
        vectors = [embed_text(t) for t in inputs]
        if body.get("dimensions"):
            vectors = [v[: int(body["dimensions"])] for v in vectors]
        return JSONResponse({"model": body["model"], "embeddings": vectors, "total_duration": 1000,
                             "load_duration": 10, "prompt_eval_count": sum(count_words(t) for t in inputs)})

    async def _tags(self, request: Request) -> Response:
        _, _, early = await self._admit(request)
        if early is not None:
            return early
        models = [{"name": name, "model": name, "modified_at": CREATED_AT, "size": 1_000_000,
                   "digest": f"sha256:{i:064x}",
                   "details": {"format": "gguf", "family": family, "families": [family],
                               "parameter_size": "1B", "quantization_level": "Q4_K_M"}}
                  for i, (name, family) in enumerate(self.models.items())]
        return JSONResponse({"models": models})

    async def _version(self, request: Request) -> Response:
        return JSONResponse({"version": "0.6.0"})

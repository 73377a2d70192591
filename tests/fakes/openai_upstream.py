"""Fake OpenAI HTTP API over real HTTP (JSON, SSE, error envelopes) with injectable faults.

Output is deterministic ("Echo: " + last user message); the public helpers below
compute the same contents and token counts, so tests can derive expected values.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import struct
import time
import wave
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes._server import (  # noqa: F401 - Fault and RecordedRequest are part of this module's API
    FakeServer,
    Fault,
    RecordedRequest,
    _StreamCut,
    count_words,
    split_chunks,
)

EMBEDDING_DIMS = 8
TOOL_CALL_TOKENS = 1  # completion_tokens reported for a tool-call reply
PER_MESSAGE_TOKENS = 3  # overhead per message, as OpenAI's chat format adds
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")


# --- deterministic content & token helpers (public: tests use them) ---------


def content_text(content: Any) -> str:
    """Text of a message's content: a string, or the text parts joined by spaces."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""  # None (e.g. assistant tool-call turns)


def count_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    return sum(count_words(content_text(m.get("content"))) + PER_MESSAGE_TOKENS for m in messages)


def reply_text(messages: Iterable[Mapping[str, Any]], max_tokens: int | None = None) -> str:
    """'Echo: ' + last user message, truncated to `max_tokens` words if given."""
    users = [m for m in messages if m.get("role") == "user"]
    text = "Echo: " + (content_text(users[-1].get("content")) if users else "")
    if max_tokens is not None:
        text = "".join(split_chunks(text)[:max_tokens])
    return text


def embed_text(text: str) -> list[float]:
    """8 floats in [-1, 1), exact in float32 so base64 round-trips losslessly."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 128) / 128 for b in digest[:EMBEDDING_DIMS]]


_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {  # status -> (type, code, message)
    429: ("requests", "rate_limit_exceeded", "Rate limit reached."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
}


def error_body(status: int, message: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope, with the type/code OpenAI uses for `status`."""
    fallback = ("server_error", None, "The server had an error.") if status >= 500 else (
        "invalid_request_error", None, "Invalid request.")
    kind, default_code, default_message = _ERROR_KINDS.get(status, fallback)
    return {"error": {"message": message or default_message, "type": kind, "param": None,
                      "code": code or default_code}}


# --- the server --------------------------------------------------------------


MALFORMED_BODY = b'{"id": "chatcmpl-broken", "choices": [{"index": 0, '


class FakeOpenAI(FakeServer):
    thread_name = "fake-openai"
    malformed_body = MALFORMED_BODY

    def __init__(
        self, api_key: str | None = "sk-test", models: Iterable[str] = DEFAULT_MODELS, *, require_key: bool = True
    ) -> None:
        super().__init__([
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/images/generations", self._images, methods=["POST"]),
            Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
            Route("/v1/moderations", self._moderations, methods=["POST"]),
            Route("/v1/audio/speech", self._speech, methods=["POST"]),
        ])
        self.api_key = api_key
        self.require_key = require_key  # False: a self-hosted server started without a key (vLLM, llama.cpp)
        self.models = list(models)
        self.uploads: list[dict[str, Any]] = []  # transcription form fields (+ file name and size)

    @property
    def base_url(self) -> str:
        return super().base_url + "/v1"

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.uploads.clear()

    def start(self, timeout: float = 10.0) -> FakeOpenAI:
        return super().start(timeout)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    # -- wire format hooks --

    def _check_auth(self, request: Request) -> Response | None:
        if not self.require_key:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "You didn't provide an API key.")
        if self.api_key is not None and token.strip() != self.api_key:
            return _error(401, f"Incorrect API key provided: {token.strip()[:8]}***.")
        return None

    def _error(self, status: int, message: str | None = None, code: str | None = None,
               retry_after: float | None = None) -> Response:
        return _error(status, message, code, retry_after)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-fake{next(self._ids)}"

    # -- routes --

    async def _chat(self, request: Request) -> Response:
        body, fault, early = await self._admit(request)
        if early is not None:
            return early
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            return _error(400, "'model' and 'messages' are required.")
        messages: list[dict[str, Any]] = body["messages"]
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        content = reply_text(messages, max_tokens)
        tool = _chosen_tool(body)
        if tool is not None:
            completion, finish = TOOL_CALL_TOKENS, "tool_calls"
        else:
            completion = count_words(content)
            finish = "length" if content != reply_text(messages) else "stop"
        prompt = count_prompt_tokens(messages)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                 "total_tokens": prompt + completion, "prompt_tokens_details": {"cached_tokens": 0}}
        head = {"id": self._new_id("chatcmpl"), "created": int(time.time()), "model": body["model"]}
        tool_call = None if tool is None else {
            "id": self._new_id("call"), "type": "function", "function": {"name": tool, "arguments": "{}"}}
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = _stream_events(head, content, tool_call, finish, usage if include_usage else None, fault)
            return StreamingResponse(events, media_type="text/event-stream")
        message: dict[str, Any] = {"role": "assistant", "content": None if tool_call else content}
        if tool_call:
            message["tool_calls"] = [tool_call]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return JSONResponse({**head, "object": "chat.completion", "choices": [choice], "usage": usage})

    async def _embeddings(self, request: Request) -> Response:
        body, _, early = await self._admit(request)
        if early is not None:
            return early
        body = body if isinstance(body, dict) else {}
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        valid = isinstance(inputs, list) and all(isinstance(t, str) for t in inputs)
        if not body.get("model") or not valid:
            return _error(400, "'model' and 'input' (string or list of strings) are required.")
        as_base64 = body.get("encoding_format") == "base64"
        data = [{"object": "embedding", "index": i, "embedding": _encode_vector(embed_text(text), as_base64)}
                for i, text in enumerate(inputs)]
        tokens = sum(count_words(t) for t in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse({"object": "list", "data": data, "model": body["model"], "usage": usage})

    async def _models(self, request: Request) -> Response:
        _, _, early = await self._admit(request)
        if early is not None:
            return early
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "openai"}
                for m in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def _images(self, request: Request) -> Response:
        body, _, early = await self._admit(request)
        if early is not None:
            return early
        if not isinstance(body, dict) or not body.get("model") or not body.get("prompt"):
            return _error(400, "'model' and 'prompt' are required.")
        n = int(body.get("n") or 1)
        if body["model"] == "dall-e-3" and n != 1:
            return _error(400, "You must provide n=1 for this model.")
        as_url = body.get("response_format") == "url"
        data = [{"url": f"https://fake-openai.invalid/images/{self._new_id('img')}.png"} if as_url
                else {"b64_json": base64.b64encode(FAKE_PNG).decode()} for _ in range(n)]
        result: dict[str, Any] = {"created": int(time.time()), "data": data}
        if body["model"].startswith("gpt-image"):  # reports what "auto" resolved to, and tokens
            quality = body.get("quality") if body.get("quality") not in (None, "auto") else "medium"
            size = body.get("size") if body.get("size") not in (None, "auto") else "1024x1024"
            result.update(quality=quality, size=size, usage={"input_tokens": count_words(body["prompt"]),
                                                             "output_tokens": 4160 * n, "total_tokens": 0})
        return JSONResponse(result)

    async def _transcriptions(self, request: Request) -> Response:
        _, _, early = await self._admit(request)
        if early is not None:
            return early
        form = await request.form()
        upload, model = form.get("file"), form.get("model")
        if not hasattr(upload, "read") or not model:
            return _error(400, "'file' and 'model' are required.")
        content = await upload.read()
        fields = {k: v for k, v in form.items() if k != "file"}
        with self._lock:
            self.uploads.append({**fields, "filename": upload.filename, "size": len(content)})
        fmt = fields.get("response_format", "json")
        if fmt == "verbose_json" and model != "whisper-1":
            return _error(400, f"response_format 'verbose_json' is not compatible with model '{model}'.")
        seconds = fake_audio_seconds(content)
        text = transcript_text(upload.filename)
        if fmt == "text":
            return Response(text, media_type="text/plain")
        if fmt == "verbose_json":
            return JSONResponse({"task": "transcribe", "language": fields.get("language") or "english",
                                 "duration": seconds, "text": text, "segments": []})
        return JSONResponse({"text": text, "usage": {"type": "duration", "seconds": math.ceil(seconds)}})


    async def _moderations(self, request: Request) -> Response:
        """OpenAI's moderation object; `flagged` (violence) when a text says "kill"."""
        body, _, early = await self._admit(request)
        if early is not None:
            return early
        inputs = body.get("input") if isinstance(body, dict) else None
        texts = [inputs] if isinstance(inputs, str) else inputs if isinstance(inputs, list) else None
        if texts is None:
            return _error(400, "'input' is required.")
        model = {"omni-moderation-latest": "omni-moderation-2024-09-26"}.get(body.get("model") or "omni-moderation-latest",
                                                                            body.get("model"))
        return JSONResponse({"id": self._new_id("modr"), "model": model,
                             "results": [moderation_result(str(t if isinstance(t, str) else t.get("text", ""))) for t in texts]})

    async def _speech(self, request: Request) -> Response:
        """Audio bytes: FAKE_SPEECH_BYTES_PER_CHAR per input character, with the format's MIME type."""
        body, _, early = await self._admit(request)
        if early is not None:
            return early
        if not isinstance(body, dict) or not body.get("model") or not body.get("input") or not body.get("voice"):
            return _error(400, "'model', 'input' and 'voice' are required.")
        fmt = body.get("response_format") or "mp3"
        return Response(fake_speech(body["input"]), media_type=SPEECH_MIME.get(fmt, "application/octet-stream"))


MODERATION_CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
                         "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors",
                         "violence", "violence/graphic")
SPEECH_MIME = {"mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac", "wav": "audio/wav",
               "pcm": "audio/pcm"}
FAKE_SPEECH_BYTES_PER_CHAR = 40


def moderation_result(text: str) -> dict[str, Any]:
    violent = "kill" in text.lower()
    categories = {c: violent and c == "violence" for c in MODERATION_CATEGORIES}
    return {"flagged": violent, "categories": categories,
            "category_scores": {c: 0.97 if flagged else 0.0002 for c, flagged in categories.items()},
            "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES}}


def fake_speech(text: str) -> bytes:
    block = (b"ID3" + hashlib.sha256(text.encode()).digest()).ljust(FAKE_SPEECH_BYTES_PER_CHAR, b"\0")
    return block * len(text)


# 1x1 transparent PNG, what the fake "draws"
FAKE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
FAKE_AUDIO_BYTES_PER_SECOND = 16_000  # non-WAV audio "lasts" as if encoded at 128 kbps


def transcript_text(filename: str | None) -> str:
    return f"Fake transcript of {filename or 'audio'}."


def fake_audio_seconds(content: bytes) -> float:
    """The duration the fake reports: a WAV header's, else bytes at 128 kbps."""
    try:
        with wave.open(io.BytesIO(content)) as reader:
            return reader.getnframes() / reader.getframerate()
    except (wave.Error, EOFError, struct.error):
        return len(content) / FAKE_AUDIO_BYTES_PER_SECOND


# --- response builders -------------------------------------------------------


def _error(status: int, message: str | None = None, code: str | None = None,
           retry_after: float | None = None) -> JSONResponse:
    headers = {}
    if retry_after is not None:
        # Retry-After must be whole seconds; the ms header carries precision.
        headers["retry-after"] = str(math.ceil(retry_after))
        headers["retry-after-ms"] = str(int(retry_after * 1000))
    return JSONResponse(error_body(status, message, code), status_code=status, headers=headers)


def _chosen_tool(body: Mapping[str, Any]) -> str | None:
    """Name of the function to call, or None for a plain text reply."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict) and choice.get("function", {}).get("name"):
        return str(choice["function"]["name"])
    return str(tools[0].get("function", {}).get("name", ""))


def _encode_vector(vector: list[float], as_base64: bool) -> list[float] | str:
    if not as_base64:
        return vector
    # What OpenAI sends: base64 of a little-endian float32 array.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _sse(payload: Mapping[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


async def _stream_events(
    head: dict[str, Any], content: str, tool_call: dict[str, Any] | None,
    finish: str, usage: dict[str, Any] | None, fault: Fault | None,
) -> AsyncIterator[bytes]:
    # With include_usage, OpenAI sends "usage": null on every chunk until the last.
    extra = {"usage": None} if usage is not None else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**head, "object": "chat.completion.chunk", "choices": [choice], **extra}

    chunks = [chunk({"role": "assistant", "content": None if tool_call else ""})]
    if tool_call:
        fn = tool_call["function"]
        start = {**tool_call, "index": 0, "function": {"name": fn["name"], "arguments": ""}}
        chunks.append(chunk({"tool_calls": [start]}))
        chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": fn["arguments"]}}]}))
    else:
        chunks.extend(chunk({"content": piece}) for piece in split_chunks(content))
    chunks.append(chunk({}, finish))
    if usage is not None:
        chunks.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})

    cut = fault.cut_after_chunks if fault else None
    for n, payload in enumerate(chunks[:cut]):
        if n == 1 and fault and fault.malformed_json:
            yield b"data: {not json\n\n"
        yield _sse(payload)
    if cut is not None:
        raise _StreamCut(f"injected cut after {cut} chunks")
    yield b"data: [DONE]\n\n"

"""The mock provider: real, in-process, deterministic. Priced in the catalog like any model.

mock-chat   answers at once; mock-slow waits first (AIBROKER_MOCK_LATENCY_MS, default 500);
mock-flaky  fails transiently on every other call (so one retry always succeeds);
mock-down   always fails transiently (for fallback demos); mock-embed makes embeddings;
mock-moderation flags by keyword and mock-tts speaks a WAV (mock_media).
mock-vote-a / -b / -c answer fixed labels ("Positive.", "positive", "Negative!") for voting.
Token counts: a prompt costs its words (text parts and earlier tool calls' names and arguments)
plus 3 per message; a reply costs its words (the text, or each tool call's name and arguments).
Streamed and plain answers count the same. Tools: the mock calls the first (or the named) tool,
with arguments that fit its `parameters`, until the conversation ends with a `tool` result; then
it answers in text, as a model ending a tool loop does. json_schema gets a valid instance of
the schema (mock_structured). Embeddings honour `encoding_format: "base64"` (little-endian
float32, as OpenAI sends them).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import math
import os
import struct
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

from aibroker.kit.audio import wav_seconds
from aibroker.kit.ids import new_id
from aibroker.providers import mock_media
from aibroker.providers.base import AudioFile, Call, Result, SpeechAudio, Transcription, Usage
from aibroker.providers.errors import ProviderBadRequest, ProviderUnavailable
from aibroker.providers.mock_structured import instance_of, structured_reply

EMBED_DIMENSIONS = 16


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a multi-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def count_words(text: str) -> int:
    return len(text.split())


def _calls_words(calls: Any) -> int:
    functions = [c.get("function") or {} for c in calls or () if isinstance(c, dict)]
    return sum(1 + count_words(str(f.get("arguments") or "")) for f in functions)


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(count_words(text_of(m.get("content"))) + _calls_words(m.get("tool_calls")) + 3 for m in messages)


def completion_tokens(message: dict[str, Any]) -> int:
    return count_words(message.get("content") or "") + _calls_words(message.get("tool_calls"))


# Fixed, disagreeing answers for consensus (collaborative voting) demos and tests.
VOTE_ANSWERS = {"mock-vote-a": "Positive.", "mock-vote-b": "positive", "mock-vote-c": "Negative!"}


def reply_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "tool":  # the end of a tool loop: say what the tool said
        words = text_of(messages[-1].get("content")).split()
        reply = ["Mock", "answer", "from", "the", "tool", "result:", *words[:40]]
    else:
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        words = text_of(last_user.get("content") if last_user else "").split()
        reply = ["Mock", "reply", "to:", *words[:40]]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    return " ".join(reply[: int(limit)] if limit else reply)


def _tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool definition the mock calls now, or None to answer in text. After a tool result
    it answers in text unless `tool_choice` forces a call ("required" or a named function)."""
    tools = [t.get("function") or {} for t in body.get("tools") or () if isinstance(t, dict)]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name")
        return next((t for t in tools if t.get("name") == named), tools[0])
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "tool" and choice != "required":
        return None
    return tools[0]


def _message(body: dict[str, Any], text: str) -> tuple[dict[str, Any], str]:
    tool = _tool_to_call(body)
    if tool is not None:
        arguments = json.dumps(instance_of(tool.get("parameters") or {"type": "object"}))
        turn = sum(1 for m in body.get("messages") or () if m.get("role") == "assistant") + 1
        call = {"id": f"call_mock_{turn}", "type": "function", "function": {"name": tool.get("name"), "arguments": arguments}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    return {"role": "assistant", "content": text}, "stop"


class MockProvider:
    name = "mock"
    speech_formats = mock_media.SPEECH_FORMATS  # the gateway refuses others (400) before any charge

    def __init__(self) -> None:
        self._flaky_calls = itertools.count(1)
        self._latency = int(os.environ.get("AIBROKER_MOCK_LATENCY_MS", "500")) / 1000

    async def _behave(self, model: str) -> None:
        if model == "mock-slow":
            await asyncio.sleep(self._latency)
        elif model == "mock-down":
            raise ProviderUnavailable("mock-down is always unavailable", provider=self.name)
        elif model == "mock-flaky" and next(self._flaky_calls) % 2 == 1:
            raise ProviderUnavailable("mock-flaky failed (transient, retry succeeds)", provider=self.name)

    async def chat(self, call: Call) -> Result:
        body = call.body
        await self._behave(call.model.name)
        # json_schema requests get deterministic JSON (see mock_structured: lead scoring).
        text = VOTE_ANSWERS.get(call.model.name) or structured_reply(body) or reply_text(body)
        message, finish = _message(body, text)
        usage = Usage(input_tokens=prompt_tokens(body.get("messages") or []), output_tokens=completion_tokens(message))
        response = {
            "id": new_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model.name,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        }
        return Result(body=response, usage=usage)

    async def stream_chat(self, call: Call) -> AsyncIterator[dict[str, Any]]:
        result = await self.chat(call)
        base = {"id": result.body["id"], "object": "chat.completion.chunk", "created": result.body["created"], "model": call.model.name}
        message = result.body["choices"][0]["message"]
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        if message.get("tool_calls"):
            deltas = [{"tool_calls": [{"index": 0, **message["tool_calls"][0]}]}]
        else:
            words = message["content"].split(" ")
            deltas = [{"content": w if i == 0 else " " + w} for i, w in enumerate(words)]
        for delta in deltas:
            await asyncio.sleep(0)  # a real stream yields control between chunks
            yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        finish = result.body["choices"][0]["finish_reason"]
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        yield {**base, "choices": [], "usage": result.body["usage"]}

    async def count_tokens(self, call: Call) -> int:
        """Exactly the prompt tokens a chat call with these messages is billed."""
        await self._behave(call.model.name)
        return prompt_tokens(call.body.get("messages") or [])

    async def embed(self, call: Call) -> Result:
        await self._behave(call.model.name)
        inputs = call.body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        as_base64 = call.body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": _encoded(_vector(str(text)), as_base64)}
            for i, text in enumerate(texts)
        ]
        tokens = sum(max(1, count_words(str(t))) for t in texts)
        body = {
            "object": "list",
            "data": data,
            "model": call.model.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Result(body=body, usage=Usage(input_tokens=tokens))

    async def images(self, call: Call) -> Result:
        """n deterministic 1x1 PNGs (colour from the prompt), as b64_json or a data URL."""
        await self._behave(call.model.name)
        body = call.body
        png = base64.b64encode(tiny_png(str(body.get("prompt", "")))).decode()
        as_url = body.get("response_format") == "url"
        item = {"url": f"data:image/png;base64,{png}"} if as_url else {"b64_json": png}
        data = [{**item, "revised_prompt": body.get("prompt")} for _ in range(int(body.get("n") or 1))]
        return Result(body={"created": int(time.time()), "data": data}, usage=Usage())

    async def transcribe(self, call: Call, audio: AudioFile) -> Transcription:
        """A fixed text per second of audio ("Mock second 1. Mock second 2. ..."); the duration
        from a WAV header, else as if 128 kbps. verbose_json gets one timed segment per second."""
        await self._behave(call.model.name)
        seconds = wav_seconds(audio.content)
        if seconds is None:
            seconds = len(audio.content) / 16_000
        pieces = [f"Mock second {i + 1}." for i in range(max(1, math.ceil(seconds - 1e-9)))]
        body = {"task": "transcribe", "language": call.body.get("language") or "english", "duration": seconds,
                "text": " ".join(pieces)}
        if call.body.get("response_format") == "verbose_json":
            body["segments"] = [{"id": i, "start": float(i), "end": float(min(i + 1, seconds)), "text": piece}
                                for i, piece in enumerate(pieces)]
        return Transcription(body=body, seconds=seconds)

    async def moderate(self, call: Call) -> Result:
        """mock-moderation: keyword categories (mock_media); free, like OpenAI's."""
        await self._behave(call.model.name)
        return Result(body=mock_media.moderation(call.body, call.model.name), usage=Usage())

    async def speech(self, call: Call) -> SpeechAudio:
        """mock-tts: a WAV (or raw PCM) whose length follows the text."""
        await self._behave(call.model.name)
        fmt = call.body.get("response_format") or "wav"
        if fmt not in self.speech_formats:
            raise ProviderBadRequest(f"{call.model.id} speaks only {' and '.join(self.speech_formats)}, not {fmt}.", provider=self.name)
        content, content_type = mock_media.speech(call.body)
        return SpeechAudio(content, content_type)

    async def aclose(self) -> None:
        return None


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = struct.unpack(f"<{EMBED_DIMENSIONS}h", digest[: EMBED_DIMENSIONS * 2])
    return [round(v / 32768, 6) for v in raw]


def _encoded(vector: list[float], as_base64: bool) -> list[float] | str:
    """OpenAI's base64 embeddings: the little-endian float32 bytes, base64-encoded."""
    if not as_base64:
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def tiny_png(seed: str) -> bytes:
    """A valid 1x1 RGB PNG whose colour depends on `seed`."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixel = b"\x00" + hashlib.sha256(seed.encode()).digest()[:3]
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixel)) + chunk(b"IEND", b"")


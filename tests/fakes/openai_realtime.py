"""A fake OpenAI Realtime server (GA events over real WebSocket, at /v1/realtime?model=).

Behaviour: `session.created` on connect; session.update -> session.updated; server VAD
emulated by size (every second of appended pcm16 24 kHz audio is a turn) or an explicit
commit; response.create answers at once. A response is 0.4 s of tone with the transcript
`TRANSCRIPT` and OpenAI-shaped usage (1 audio token / 100 ms heard, 1 / 50 ms spoken); with
tools, the first response calls the first tool. `echo` mode answers every append with the
same audio as one output_audio.delta (the benchmark's per-frame round trip).

Faults (set between tests, `reset()` clears): `drop_after_events` aborts the TCP connection
after N server events (no close frame); `slow_frames` sleeps before each server event;
`refuse` answers the handshake with 503."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.fakes._ws_server import ThreadedWebSocketServer

TRANSCRIPT = "This is the fake OpenAI realtime model."
TOOL_ARGUMENTS = json.dumps({"city": "Lisbon"})


def fake_tone(seconds: float, rate: int = 24_000) -> bytes:
    samples = np.arange(int(seconds * rate))
    return (np.sin(2 * np.pi * 330 * samples / rate) * 5000).astype("<i2").tobytes()


@dataclass
class Faults:
    drop_after_events: int | None = None
    slow_frames: float = 0.0
    refuse: bool = False
    echo: bool = False


@dataclass
class Connection:
    model: str | None
    headers: dict[str, str]
    received: list[dict[str, Any]] = field(default_factory=list)


class FakeOpenAIRealtime(ThreadedWebSocketServer):
    def __init__(self, api_key: str = "sk-test") -> None:
        super().__init__(self._handle, self._check)
        self.api_key = api_key
        self.faults = Faults()
        self.connections: list[Connection] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        self.faults = Faults()
        self.connections = []

    def _check(self, _conn: ServerConnection, request: Request) -> Response | None:
        if self.faults.refuse:
            return Response(503, "Service Unavailable", Headers(), b"overloaded")
        if urlsplit(request.path).path != "/v1/realtime":
            return Response(404, "Not Found", Headers(), b"")
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Response(401, "Unauthorized", Headers({"content-type": "application/json"}),
                            b'{"error":{"type":"invalid_request_error","code":"invalid_api_key","message":"bad key"}}')
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)
        record = Connection(model=(query.get("model") or [None])[0], headers={k.lower(): v for k, v in ws.request.headers.raw_items()})
        self.connections.append(record)
        session = _Session(ws, self.faults, record)
        try:
            await session.run()
        except ConnectionClosed:
            pass


class _Session:
    def __init__(self, ws: ServerConnection, faults: Faults, record: Connection) -> None:
        self.ws, self.faults, self.record = ws, faults, record
        self.sent = 0
        self.n = 0
        self.buffer_ms = 0.0
        self.heard_ms = 0.0
        self.tools: list[dict[str, Any]] = []
        self.tool_called = False
        self.config: dict[str, Any] = {"type": "realtime", "model": record.model}

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_fake{self.n}"

    async def emit(self, event: dict[str, Any]) -> None:
        if self.faults.slow_frames:
            await asyncio.sleep(self.faults.slow_frames)
        if self.faults.drop_after_events is not None and self.sent >= self.faults.drop_after_events:
            self.ws.transport.abort()  # a dropped connection: no close frame
            raise ConnectionClosed(None, None)
        self.sent += 1
        await self.ws.send(json.dumps({"event_id": self._id("event"), **event}))

    async def run(self) -> None:
        await self.emit({"type": "session.created", "session": {"id": self._id("sess"), "object": "realtime.session", **self.config}})
        async for raw in self.ws:
            event = json.loads(raw)
            self.record.received.append(event)
            await self.on(event)

    async def on(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.update":
            self.config.update(event.get("session") or {})
            self.tools = list(self.config.get("tools") or [])
            await self.emit({"type": "session.updated", "session": self.config})
        elif kind == "input_audio_buffer.append":
            pcm = base64.b64decode(event["audio"])
            if self.faults.echo:
                await self.emit({"type": "response.output_audio.delta", "response_id": "resp_echo", "item_id": "item_echo",
                                 "output_index": 0, "content_index": 0, "delta": event["audio"]})
                return
            self.buffer_ms += len(pcm) / 48
            if self.buffer_ms >= 1000:
                await self.turn()
        elif kind == "input_audio_buffer.commit":
            await self.turn()
        elif kind == "conversation.item.create":
            item = {"id": self._id("item"), **event["item"]}
            await self.emit({"type": "conversation.item.added", "item": item, "previous_item_id": None})
            await self.emit({"type": "conversation.item.done", "item": item, "previous_item_id": None})
        elif kind == "response.create":
            await self.respond()
        else:
            await self.emit({"type": "error", "error": {"type": "invalid_request_error", "code": "unknown_event",
                                                        "message": f"unknown {kind}", "event_id": event.get("event_id")}})

    async def turn(self) -> None:
        item_id = self._id("item")
        self.heard_ms += self.buffer_ms
        self.buffer_ms = 0.0
        await self.emit({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": None})
        await self.emit({"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id,
                         "content_index": 0, "transcript": "what's the weather in lisbon"})
        await self.respond()

    async def respond(self) -> None:
        rid = self._id("resp")
        await self.emit({"type": "response.created", "response": {"id": rid, "object": "realtime.response", "status": "in_progress", "output": []}})
        heard, self.heard_ms = self.heard_ms, 0.0
        usage_in = {"text_tokens": 120, "audio_tokens": math.ceil(heard / 100), "cached_tokens": 64,
                    "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0, "image_tokens": 0}}
        if self.tools and not self.tool_called:
            self.tool_called = True
            item = {"id": self._id("fc"), "type": "function_call", "call_id": self._id("call"), "name": self.tools[0]["name"],
                    "arguments": TOOL_ARGUMENTS, "status": "completed"}
            await self.emit({"type": "response.output_item.added", "response_id": rid, "output_index": 0, "item": {**item, "arguments": ""}})
            await self.emit({"type": "response.function_call_arguments.done", "response_id": rid, "item_id": item["id"],
                             "output_index": 0, "call_id": item["call_id"], "name": item["name"], "arguments": TOOL_ARGUMENTS})
            await self.emit({"type": "response.output_item.done", "response_id": rid, "output_index": 0, "item": item})
            await self.done(rid, [item], usage_in, {"text_tokens": 12, "audio_tokens": 0})
            return
        item_id = self._id("item")
        base = {"response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0}
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        await self.emit({"type": "response.output_item.added", "response_id": rid, "output_index": 0, "item": item})
        await self.emit({"type": "response.content_part.added", **base, "part": {"type": "audio", "transcript": ""}})
        pcm = fake_tone(0.4)
        for i in range(0, len(pcm), 4800):
            await self.emit({"type": "response.output_audio.delta", **base, "delta": base64.b64encode(pcm[i:i + 4800]).decode()})
        for word in TRANSCRIPT.split(" "):
            await self.emit({"type": "response.output_audio_transcript.delta", **base, "delta": word + " "})
        await self.emit({"type": "response.output_audio.done", **base})
        await self.emit({"type": "response.output_audio_transcript.done", **base, "transcript": TRANSCRIPT})
        done_item = {**item, "status": "completed", "content": [{"type": "output_audio", "transcript": TRANSCRIPT}]}
        await self.emit({"type": "response.output_item.done", "response_id": rid, "output_index": 0, "item": done_item})
        await self.done(rid, [done_item], usage_in, {"text_tokens": 10, "audio_tokens": 8})

    async def done(self, rid: str, output: list[dict[str, Any]], usage_in: dict[str, Any], usage_out: dict[str, int]) -> None:
        total_in = usage_in["text_tokens"] + usage_in["audio_tokens"]
        total_out = usage_out["text_tokens"] + usage_out["audio_tokens"]
        usage = {"total_tokens": total_in + total_out, "input_tokens": total_in, "output_tokens": total_out,
                 "input_token_details": usage_in, "output_token_details": usage_out}
        await self.emit({"type": "response.done", "response": {"id": rid, "object": "realtime.response", "status": "completed",
                                                               "output": output, "usage": usage}})
        await self.emit({"type": "rate_limits.updated", "rate_limits": [{"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5}]})

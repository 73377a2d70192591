"""A fake Gemini Live server: BidiGenerateContent over real WebSocket, camelCase JSON.

`setup` first (answered `setupComplete`, then a `sessionResumptionUpdate` handle); audio
comes as realtimeInput (must say rate=16000); a turn is every second of it, an
`audioStreamEnd`, a clientContent with turnComplete, or a toolResponse. A turn answers:
inputTranscription, modelTurn audio (24 kHz, as inlineData), outputTranscription,
generationComplete, turnComplete with usageMetadata by modality (one earlier cumulative
snapshot too, which a client must not bill twice). With tools, the first turn is a toolCall.

Faults: `go_away_after_turns` sends goAway after N turns and closes the connection (the
client resumes with its handle); `drop_after_turns` aborts the TCP connection after N turns;
`slow_frames` sleeps before each message."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.fakes._ws_server import ThreadedWebSocketServer
from tests.fakes.openai_realtime import fake_tone

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
TRANSCRIPT = "It is nineteen degrees and clear."


@dataclass
class Faults:
    go_away_after_turns: int | None = None
    drop_after_turns: int | None = None
    slow_frames: float = 0.0


@dataclass
class State:
    setups: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    audio_bytes: int = 0  # 16 kHz PCM16 received
    bad_rates: list[str] = field(default_factory=list)
    turns: int = 0
    handles: int = 0
    resumed: list[str] = field(default_factory=list)


class FakeGeminiLive(ThreadedWebSocketServer):
    def __init__(self, api_key: str = "gm-test") -> None:
        super().__init__(self._handle, self._check)
        self.api_key = api_key
        self.faults = Faults()
        self.state = State()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.faults, self.state = Faults(), State()

    def _check(self, _conn: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != PATH:
            return Response(404, "Not Found", Headers(), b"")
        if request.headers.get("x-goog-api-key") != self.api_key:
            return Response(403, "Forbidden", Headers(), b"API key not valid")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            await _Session(ws, self).run()
        except ConnectionClosed:
            pass


class _Session:
    def __init__(self, ws: ServerConnection, fake: FakeGeminiLive) -> None:
        self.ws, self.fake, self.state = ws, fake, fake.state
        self.heard = 0
        self.tools: list[str] = []
        self.tool_called = False
        self.turns_here = 0

    async def emit(self, message: dict[str, Any]) -> None:
        if self.fake.faults.slow_frames:
            await asyncio.sleep(self.fake.faults.slow_frames)
        await self.ws.send(json.dumps(message).encode())  # the server sends JSON in binary frames

    async def run(self) -> None:
        setup = json.loads(await self.ws.recv())["setup"]
        self.state.setups.append(setup)
        handle = (setup.get("sessionResumption") or {}).get("handle")
        if handle:
            self.state.resumed.append(handle)
        for group in setup.get("tools") or []:
            self.tools += [d["name"] for d in group.get("functionDeclarations") or []]
        await self.emit({"setupComplete": {}})
        await self.new_handle()
        async for raw in self.ws:
            message = json.loads(raw)
            self.state.received.append(message)
            await self.on(message)

    async def new_handle(self) -> None:
        self.state.handles += 1
        await self.emit({"sessionResumptionUpdate": {"newHandle": f"handle-{self.state.handles}", "resumable": True}})

    async def on(self, message: dict[str, Any]) -> None:
        realtime = message.get("realtimeInput") or message.get("realtime_input")
        if realtime is not None:
            audio = realtime.get("audio")
            if audio:
                if "rate=16000" not in audio.get("mimeType", ""):
                    self.state.bad_rates.append(audio.get("mimeType", ""))
                size = len(base64.b64decode(audio["data"]))
                self.state.audio_bytes += size
                self.heard += size
                if self.heard >= 32_000:  # one second at 16 kHz
                    await self.turn()
            elif realtime.get("audioStreamEnd"):
                await self.turn()
            return
        content = message.get("clientContent") or message.get("client_content")
        if content is not None and content.get("turnComplete"):
            await self.turn()
        if message.get("toolResponse") or message.get("tool_response"):
            await self.turn(after_tool=True)

    async def turn(self, after_tool: bool = False) -> None:
        heard_ms, self.heard = self.heard / 32, 0
        self.state.turns += 1
        self.turns_here += 1
        audio_in = math.ceil(heard_ms * 32 / 1000)
        if heard_ms:
            await self.emit({"serverContent": {"inputTranscription": {"text": "what's the weather in lisbon"}}})
        if self.tools and not self.tool_called and not after_tool:
            self.tool_called = True
            await self.emit({"toolCall": {"functionCalls": [{"id": "fc-1", "name": self.tools[0], "args": {"city": "Lisbon"}}]}})
            return
        pcm = fake_tone(0.4)
        for i in range(0, len(pcm), 4800):
            await self.emit({"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000",
                                                                                       "data": base64.b64encode(pcm[i:i + 4800]).decode()}}]}}})
        await self.emit({"serverContent": {"outputTranscription": {"text": TRANSCRIPT}}})
        snapshot = {"promptTokenCount": 200 + audio_in, "responseTokenCount": 5, "totalTokenCount": 205 + audio_in}
        await self.emit({"serverContent": {"generationComplete": True}, "usageMetadata": snapshot})
        await self.emit({"serverContent": {"turnComplete": True}, "usageMetadata": {
            "promptTokenCount": 200 + audio_in, "responseTokenCount": 13, "totalTokenCount": 213 + audio_in,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 200}, {"modality": "AUDIO", "tokenCount": audio_in}],
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 13}]}})
        await self.new_handle()
        faults = self.fake.faults
        if faults.go_away_after_turns is not None and self.turns_here >= faults.go_away_after_turns:
            await self.emit({"goAway": {"timeLeft": "1s"}})
            await self.ws.close()
        elif faults.drop_after_turns is not None and self.state.turns >= faults.drop_after_turns:
            self.ws.transport.abort()

"""A browser-like voice client for the tests: init over HTTP, then the session's WebSocket."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from aibroker.voice.audio import tone

FRAME_BYTES = 960  # 20 ms of pcm16 at 24 kHz
WAIT = 15.0


def init(broker: Any, key: str, session_id: str, **body: Any) -> dict[str, Any]:
    with broker.client(key) as http:
        response = http.post(f"/api/voice/init/{session_id}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


class Voice:
    """One connected session: send events, wait for a server event type."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, **kw: Any) -> Voice:
        return cls(await connect(url, max_size=16 * 1024 * 1024, **kw))

    async def send(self, event: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(event if isinstance(event, (str, bytes)) else json.dumps(event))

    async def speak(self, seconds: float, frequency: float = 200.0) -> int:
        """Stream `seconds` of audio as 20 ms appends; the bytes sent."""
        pcm = tone(seconds, frequency)
        for i in range(0, len(pcm), FRAME_BYTES):
            await self.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + FRAME_BYTES]).decode()})
        return len(pcm)

    async def next(self, timeout: float = WAIT) -> dict[str, Any]:
        event = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.seen.append(event)
        return event

    async def until(self, kind: str, timeout: float = WAIT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            event = await self.next(max(0.01, deadline - time.monotonic()))
            if event["type"] == kind:
                return event

    async def closed(self, timeout: float = WAIT) -> tuple[int | None, str | None]:
        """Read until the server closes; (code, reason)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                await self.next(max(0.01, deadline - time.monotonic()))
        except websockets.exceptions.ConnectionClosed:
            pass
        assert self.ws.close_code is not None, "the server never closed the socket"
        return self.ws.close_code, self.ws.close_reason

    def types(self) -> list[str]:
        return [e["type"] for e in self.seen]

    def audio_bytes(self, kind: str = "response.output_audio.delta") -> int:
        return sum(len(base64.b64decode(e["delta"])) for e in self.seen if e["type"] == kind)

    async def close(self) -> None:
        await self.ws.close()


def wait_for(condition: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `condition()` until truthy (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")

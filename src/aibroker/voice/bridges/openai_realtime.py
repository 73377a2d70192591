"""The bridge to OpenAI Realtime (GA) over WebSocket: the client already speaks its protocol,
so events pass through, checked; the broker owns the session's config (the model is never
the client's to change) and answers session.created / session.updated itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

from aibroker.voice.bridges.base import Event, UpstreamClosed, websocket_url
from aibroker.voice.protocol import GA_NAMES, SessionConfig

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
SWALLOWED = frozenset({"session.created", "session.updated"})


class OpenAIRealtimeBridge:
    def __init__(self, base_url: str, api_key: str | None, config: SessionConfig, *, connect_timeout: float = 10.0) -> None:
        self.url = websocket_url(base_url, "/realtime") + "?model=" + quote(config.model, safe="")
        self.api_key = api_key
        self.config = config
        self.connect_timeout = connect_timeout
        self.ws: ClientConnection | None = None

    async def connect(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            self.ws = await connect(self.url, additional_headers=headers, max_size=MAX_MESSAGE_BYTES,
                                    open_timeout=self.connect_timeout, compression=None)
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            raise UpstreamClosed(f"the upstream refused the connection ({type(exc).__name__})") from exc
        await self._send({"type": "session.update", "session": self.config.upstream_session()})

    async def _send(self, event: dict[str, Any]) -> None:
        if self.ws is None:
            raise UpstreamClosed("not connected")
        try:
            await self.ws.send(orjson.dumps(event).decode())
        except websockets.exceptions.ConnectionClosed as exc:
            raise UpstreamClosed("the upstream closed the connection", code=exc.rcvd.code if exc.rcvd else None) from exc

    async def send(self, event: Event) -> None:
        await self._send(event)

    async def update(self, config: SessionConfig) -> None:
        self.config = config
        await self._send({"type": "session.update", "session": config.upstream_session()})

    async def events(self) -> AsyncIterator[Event]:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                try:
                    event = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue  # not JSON: nothing a client could use
                if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                    continue
                if event["type"] in SWALLOWED:
                    continue
                if event["type"] in GA_NAMES:  # an upstream still on beta names
                    event["type"] = GA_NAMES[event["type"]]
                yield event
        except websockets.exceptions.ConnectionClosed as exc:
            raise UpstreamClosed("the upstream connection dropped", code=exc.rcvd.code if exc.rcvd else None) from exc
        code = self.ws.close_code
        raise UpstreamClosed("the upstream closed the session", code=code)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

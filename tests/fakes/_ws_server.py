"""A websockets (16) server on a free port, in a thread with its own event loop, for the fake
realtime upstreams (they speak real WebSocket, as the providers do)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response


class ThreadedWebSocketServer:
    def __init__(self, handler: Callable[[ServerConnection], Awaitable[None]],
                 process_request: Callable[[ServerConnection, Request], Response | None] | None = None) -> None:
        self._handler = handler
        self._process_request = process_request
        self.loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

        async def open_server() -> Server:
            return await serve(self._handler, "127.0.0.1", 0, process_request=self._process_request, max_size=16 * 1024 * 1024,
                               compression=None)

        self._server = asyncio.run_coroutine_threadsafe(open_server(), self.loop).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._server is not None:
            server = self._server

            async def close() -> None:
                server.close()
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

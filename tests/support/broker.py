"""A real broker on a free port, in a thread, for tests that speak HTTP to it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from aibroker.app import create_app
from aibroker.config import Settings
from aibroker.db import make_sync_engine

ADMIN_TOKEN = "test-admin-token"


@contextlib.contextmanager
def serving(database_url: str, env: dict[str, str], monkeypatch: Any) -> Iterator[BrokerServer]:
    """A started broker on `database_url`, with `env` set for it (monkeypatch undoes it after the test)."""
    for name, value in {**env, "AIBROKER_DATABASE_URL": database_url}.items():
        monkeypatch.setenv(name, value)
    server = BrokerServer(database_url)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class BrokerServer:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.settings = Settings()  # read now: the test has set the environment
        self.app = create_app(self.settings)
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.db: Engine = make_sync_engine(database_url)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def services(self) -> Any:
        return self.app.state.services

    def start(self, timeout: float = 20.0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=5, access_log=False,
                                proxy_headers=False)  # as `aibroker serve`: only AIBROKER_TRUSTED_PROXIES are believed
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test broker failed to start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        if self._sock is not None:
            self._sock.close()
        self.db.dispose()

    # -- helpers for tests ------------------------------------------------------------

    def client(self, key: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        kw.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, headers=headers, **kw)

    def admin(self) -> httpx.Client:
        return self.client(ADMIN_TOKEN)

    def create_org(self, name: str = "Acme", *, credit: str | Decimal | None = "10", **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, **extra}
        if credit is not None:
            body["credit"] = str(credit)
        with self.admin() as admin:
            response = admin.post("/api/admin/organizations", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def rows(self, table: Any, *where: Any) -> list[Any]:
        with self.db.connect() as conn:
            return list(conn.execute(select(table).where(*where)))

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.db.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def flush(self) -> None:
        """Wait until the money writer has committed everything queued so far, with idle
        wallet leases given back (so `held` shows only in-flight requests)."""
        import asyncio

        services = self.services
        writer = services.writer

        async def settle() -> None:
            await writer.drain()
            if services.leases is not None:
                await services.leases.tidy(force=True)
            await writer.drain()

        asyncio.run_coroutine_threadsafe(settle(), writer.loop).result(timeout=10)

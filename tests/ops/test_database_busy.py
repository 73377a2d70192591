"""A saturated database answers 503 `database_busy` with Retry-After, never a bare 500.

The mapping is checked on real failures (a SQLite write lock past its timeout, a pool with
no free connection, a refused connection, PostgreSQL's "too many connections"), and end to
end on a broker whose request pool the test holds: on the fast path (chat), on a FastAPI
route, and with a usage record (refused, unbilled) once the request has an organization."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from aibroker.db import make_sync_engine
from aibroker.models import LedgerEntry, UsageRecord
from aibroker.ops.db_errors import database_busy, is_database_busy
from tests.conftest import PG_URL
from tests.support.broker import BrokerServer, serving

CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def _caught(action) -> BaseException:  # type: ignore[no-untyped-def]
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - the test inspects what was raised
        return exc
    raise AssertionError("expected an error")


async def _caught_async(action) -> BaseException:  # type: ignore[no-untyped-def]
    try:
        await action()
    except Exception as exc:  # noqa: BLE001
        return exc
    raise AssertionError("expected an error")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sqlite_locked_past_its_timeout_is_busy(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    holder = make_sync_engine(url, immediate=True)
    waiter = make_sync_engine(url, immediate=True, wait_for_lock=False)  # busy_timeout 0: "past its timeout" at once
    try:
        with holder.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        with holder.begin():
            locked = _caught(lambda: waiter.begin().__enter__())
        assert "database is locked" in str(locked) and is_database_busy(locked)
        syntax = _caught(lambda: waiter.connect().execute(text("SELEC nonsense")))
        assert not is_database_busy(syntax)  # a real bug stays a 500
    finally:
        holder.dispose()
        waiter.dispose()


async def test_a_pool_with_no_free_connection_is_busy(tmp_path: Path):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}", pool_size=1, max_overflow=0, pool_timeout=0.05)
    try:
        async with engine.connect():
            timed_out = await _caught_async(engine.connect)
        busy = database_busy(timed_out)
        assert busy is not None and busy.status_code == 503 and busy.code == "database_busy"
        assert int(busy.headers["Retry-After"]) >= 1
    finally:
        await engine.dispose()


async def test_a_refused_database_connection_is_busy_but_any_refused_socket_is_not():
    engine = create_async_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{_closed_port()}/none")
    try:
        refused = await _caught_async(engine.connect)
    finally:
        await engine.dispose()
    assert is_database_busy(refused)
    plain = _caught(lambda: socket.create_connection(("127.0.0.1", _closed_port()), timeout=1))
    assert isinstance(plain, ConnectionRefusedError) and not is_database_busy(plain)


if PG_URL:

    async def test_postgresql_too_many_connections_is_busy():
        admin = make_sync_engine(PG_URL, pooled=False)
        with admin.begin() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'aibroker_busy'")).scalar()
            conn.execute(text(f"{'ALTER' if exists else 'CREATE'} ROLE aibroker_busy LOGIN CONNECTION LIMIT 0"))
        admin.dispose()
        url = make_url(PG_URL).set(drivername="postgresql+asyncpg", username="aibroker_busy", password=None)
        engine = create_async_engine(url)
        try:
            refused = await _caught_async(engine.connect)
        finally:
            await engine.dispose()
        assert "too many connections" in str(refused) and is_database_busy(refused)


# -- end to end -------------------------------------------------------------------------


@pytest.fixture
def busy_broker(database_url: str, broker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[BrokerServer]:
    env = {
        **broker_env,
        "AIBROKER_MOCK_LATENCY_MS": "0",
        "AIBROKER_LIMITS_ENABLED": "false",
        "AIBROKER_DB_MAX_CONNECTIONS": "3",  # the request pool: 2 connections (the money writer has its own)
        "AIBROKER_DB_POOL_TIMEOUT_SECONDS": "0.3",
        "AIBROKER_BYOK_CACHE_SECONDS": "0",  # every request reads its organization's provider keys
    }
    with serving(database_url, env, monkeypatch) as server:
        yield server


class HeldPool:
    """Every connection of the broker's request pool, checked out on the broker's own loop."""

    def __init__(self, broker: BrokerServer) -> None:
        self.loop = broker.services.writer.loop
        self.engine = broker.services.db.engine
        self.held: list = []

    def _on_loop(self, work):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=10)

    def __enter__(self) -> HeldPool:
        async def take() -> None:
            for _ in range(self.engine.pool.size() + self.engine.pool._max_overflow):  # type: ignore[attr-defined]
                self.held.append(await self.engine.connect())

        self._on_loop(take())
        return self

    def __exit__(self, *_exc: object) -> None:
        async def give_back() -> None:
            for conn in self.held:
                await conn.close()

        self._on_loop(give_back())


def _assert_busy(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "database_busy" and error["code"] == "database_busy"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-request-id"]


def test_a_saturated_database_answers_503_with_a_record_never_500(busy_broker: BrokerServer):
    org = busy_broker.create_org("Busy", credit="10")
    stranger = busy_broker.create_org("Stranger", credit="1")  # its key is never looked up before the pool is full
    with busy_broker.client(org["api_key"]) as client:
        assert client.post("/v1/chat/completions", json=CHAT, headers={"x-request-id": "warm"}).status_code == 200
        with HeldPool(busy_broker), busy_broker.client(stranger["api_key"]) as cold:
            _assert_busy(cold.post("/v1/chat/completions", json=CHAT))  # the fast path: key lookup waits, 503
            _assert_busy(cold.get("/v1/models"))  # a FastAPI route: the same answer
            _assert_busy(client.post("/v1/chat/completions", json=CHAT, headers={"x-request-id": "busy-1"}))
        assert client.post("/v1/chat/completions", json=CHAT, headers={"x-request-id": "after"}).status_code == 200

    busy_broker.flush()
    [record] = busy_broker.rows(UsageRecord, UsageRecord.request_id == "busy-1")
    assert record.status == "refused" and record.error_type == "database_busy" and record.billed_cost_micros == 0
    assert record.organization_id == org["organization_id"]
    assert busy_broker.rows(UsageRecord, UsageRecord.organization_id == stranger["organization_id"]) == []
    with busy_broker.db.connect() as conn:
        debited = conn.execute(
            select(UsageRecord.request_id).join(LedgerEntry, LedgerEntry.usage_record_id == UsageRecord.id)
        ).scalars().all()
    assert sorted(debited) == ["after", "warm"]

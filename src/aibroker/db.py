"""Engines and sessions. Services take a session and never commit; the request or job owns it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from aibroker.config import DatabaseSettings, get_settings


def async_url(url: str) -> str:
    """Accept plain URLs too: sqlite:/// and postgresql:// get their async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (migrations, the money writer thread)."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        parsed = parsed.set(drivername="sqlite")
    elif parsed.drivername.startswith("postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).drivername.startswith("sqlite")


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that can take ON CONFLICT clauses, in the session's dialect (both of ours
    support them): for rows several processes may insert at once."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _tune_sqlite(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed during writes; NORMAL is durable at each checkpoint and
    # crash-safe (no corruption), the standard trade-off for WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@dataclass(frozen=True, slots=True)
class ConnectionBudget:
    """How a process's AIBROKER_DB_MAX_CONNECTIONS is split between its two PostgreSQL pools.
    Every other user of the database in the process (auth, BYOK and tenant lookups, jobs,
    alert delivery, catalog and routing reloads) shares the async pool; the hold sweeper runs
    on the writer's. So a process never holds more than `total` (SQLite: no server limit, but
    the request pool is sized the same way)."""

    total: int
    writer: int  # the money writer's sync pool: one thread, plus one spare for a reconnect
    pool_timeout: float

    @property
    def request(self) -> int:  # the async pool
        return self.total - self.writer


def connection_budget(settings: DatabaseSettings | None = None) -> ConnectionBudget:
    settings = settings or get_settings().database
    total = max(2, settings.db_max_connections)
    return ConnectionBudget(total, 2 if total >= 6 else 1, settings.db_pool_timeout_seconds)


def make_async_engine(url: str | None = None, *, settings: DatabaseSettings | None = None) -> AsyncEngine:
    url = async_url(url or get_settings().database.database_url)
    budget = connection_budget(settings)
    # Half stays open; the rest opens under load and closes when it is returned.
    steady = max(1, budget.request // 2)
    sizing: dict[str, Any] = dict(pool_size=steady, max_overflow=budget.request - steady, pool_timeout=budget.pool_timeout)
    if is_sqlite(url):
        in_memory = make_url(url).database in (None, "", ":memory:")  # one shared connection (StaticPool)
        engine = create_async_engine(url, **({} if in_memory else sizing))
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    return create_async_engine(url, pool_pre_ping=True, **sizing)


def make_sync_engine(
    url: str | None = None, *, immediate: bool = False, pooled: bool = True, wait_for_lock: bool = True,
    settings: DatabaseSettings | None = None,
) -> Engine:
    """A sync engine. `immediate` takes SQLite's write lock at BEGIN, so read-then-write
    transactions (wallet checks) are serialized across processes instead of failing late.
    `wait_for_lock=False` makes a busy SQLite database fail at once instead of waiting.
    A pooled PostgreSQL engine is the money writer's share of the connection budget."""
    url = sync_url(url or get_settings().database.database_url)
    if not pooled:
        engine = create_engine(url, poolclass=NullPool)
    elif not is_sqlite(url):
        budget = connection_budget(settings)
        return create_engine(
            url, pool_size=budget.writer, max_overflow=0, pool_timeout=budget.pool_timeout, pool_pre_ping=True
        )
    else:
        engine = create_engine(url)
    if not is_sqlite(url):
        return engine
    event.listen(engine, "connect", _tune_sqlite)
    if not wait_for_lock:

        @event.listens_for(engine, "connect")
        def _fail_fast(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA busy_timeout=0")
            # Its owner checkpoints the WAL off the hot path instead (MoneyWriter.checkpoint).
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    if immediate:

        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """The process's async engine and session factory."""

    def __init__(self, url: str | None = None, *, settings: DatabaseSettings | None = None) -> None:
        self.url = url or get_settings().database.database_url
        self.engine = make_async_engine(self.url, settings=settings)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()

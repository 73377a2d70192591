"""Sessions for short write transactions (job claims, job runs, webhook intake).

On SQLite a deferred transaction that reads and then writes fails at once ("database is
locked") when another connection committed in between; BEGIN IMMEDIATE takes the write
lock up front and waits (busy_timeout) instead. Handlers therefore make their slow outside
calls before their first statement on the job session. PostgreSQL needs none of this.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from aibroker.db import Database, _tune_sqlite, async_url, is_sqlite

_immediate: dict[str, async_sessionmaker[AsyncSession]] = {}


def write_sessions(db: Database) -> async_sessionmaker[AsyncSession]:
    if not is_sqlite(db.url):
        return db.sessions
    sessions = _immediate.get(db.url)
    if sessions is None:
        engine = create_async_engine(async_url(db.url))
        event.listen(engine.sync_engine, "connect", _tune_sqlite)

        @event.listens_for(engine.sync_engine, "connect")
        def _no_autobegin(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        sessions = async_sessionmaker(engine, expire_on_commit=False)
        _immediate[db.url] = sessions
    return sessions


async def dispose(url: str) -> None:
    """Close the pooled SQLite write connections of `url` (when the process's services stop)."""
    sessions = _immediate.pop(url, None)
    if sessions is not None:
        await sessions.kw["bind"].dispose()

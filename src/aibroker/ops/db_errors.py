"""A saturated database is a 503 `database_busy` with Retry-After, never a bare 500.

"Saturated" means the database could not take the request now, though it may a moment
later: the process's pool timed out waiting for a free connection, PostgreSQL refused a
new one (too many clients / connections for the role, starting up or shutting down), the
server refused the connection, or SQLite stayed locked past its busy timeout. Anything else
stays an unexpected error. This module is the one place that decides; the FastAPI handlers
(`install`), the fast path and the gateway (which records the refusal) all ask it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from sqlalchemy import exc as sa_exc
from starlette.requests import Request
from starlette.responses import Response

from aibroker.errors import BrokerError

# SQLSTATEs: too_many_connections, insufficient_resources, cannot_connect_now, admin/crash
# shutdown, and the connection-exception class (refused, lost while connecting).
_BUSY_SQLSTATES = {"53300", "53000", "57P01", "57P02", "57P03", "08000", "08001", "08004", "08006"}
_BUSY_WORDS = (
    "too many clients", "too many connections", "remaining connection slots are reserved",
    "database is locked", "connection refused", "could not connect", "the database system is starting up",
    "the database system is shutting down",
)
_DRIVERS = ("sqlalchemy", "asyncpg", "psycopg", "aiosqlite", "sqlite3")


class DatabaseBusy(BrokerError):
    status_code = 503
    error_type = "database_busy"

    def __init__(self, retry_after: int | None = None) -> None:
        seconds = retry_after if retry_after is not None else _retry_after()
        super().__init__(
            f"The database is busy; retry in {seconds} s. Nothing was charged.",
            code="database_busy",
            headers={"Retry-After": str(seconds)},
        )
        self.recorded = False  # the gateway wrote this request's usage record already


def _retry_after() -> int:
    from aibroker.config import get_settings

    return get_settings().database.db_busy_retry_after_seconds


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend([getattr(item, "orig", None), item.__cause__, item.__context__])


def _raised_by_driver(exc: BaseException) -> bool:
    """An OSError is the database's only when it came out of the database stack (not Redis's, not a provider's)."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").split(".")[0] in _DRIVERS:
            return True
        tb = tb.tb_next
    return False


def is_database_busy(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseBusy):
        return True
    for item in _chain(exc):
        if isinstance(item, sa_exc.TimeoutError):  # QueuePool: no connection free within pool_timeout
            return True
        if isinstance(item, ConnectionRefusedError) and _raised_by_driver(item):
            return True
        state = getattr(item, "sqlstate", None) or getattr(item, "pgcode", None)
        if isinstance(state, str) and state in _BUSY_SQLSTATES:
            return True
        module = type(item).__module__.split(".")[0]
        if module in _DRIVERS and any(word in str(item).lower() for word in _BUSY_WORDS):
            return True
    return False


def database_busy(exc: BaseException) -> DatabaseBusy | None:
    """The 503 to answer for `exc`, or None when `exc` is not a saturated database."""
    if isinstance(exc, DatabaseBusy):
        return exc
    return DatabaseBusy() if is_database_busy(exc) else None


def install(app: FastAPI) -> None:
    """Database errors reaching FastAPI: busy ones render like any BrokerError, others as before."""
    render_broker = app.exception_handlers[BrokerError]
    render_unexpected = app.exception_handlers[Exception]

    async def handler(request: Request, exc: Exception) -> Response:
        busy = database_busy(exc)
        if busy is None:
            return await render_unexpected(request, exc)  # type: ignore[no-any-return]
        return await render_broker(request, busy)  # type: ignore[no-any-return]

    for kind in _error_classes():
        app.add_exception_handler(kind, handler)


def _error_classes() -> list[type[Any]]:
    kinds: list[type[Any]] = [sa_exc.SQLAlchemyError, ConnectionRefusedError]
    try:
        import asyncpg

        kinds.append(asyncpg.PostgresError)
    except ImportError:  # SQLite-only installs
        pass
    try:
        import psycopg

        kinds.append(psycopg.Error)
    except ImportError:
        pass
    return kinds

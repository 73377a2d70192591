"""What the domains' command lines share: one database session for one command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")


def with_session(work: Callable[[Any], Awaitable[T]], *, commit: bool = False) -> T:
    """Run `work(session)` on a fresh engine (disposed after); a domain error, or a database
    that was never migrated, becomes `error: <message>` on stderr and exit code 1."""
    from aibroker.db import Database
    from aibroker.errors import BrokerError

    async def run() -> T:
        db = Database()
        try:
            async with db.sessions() as session:
                result = await work(session)
                if commit:
                    await session.commit()
                return result
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except BrokerError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    except DBAPIError as exc:
        if not _missing_table(exc):
            raise
        typer.echo("error: this database has no aibroker schema yet; run `aibroker migrate` first", err=True)
        raise typer.Exit(1) from exc


def _missing_table(exc: DBAPIError) -> bool:
    # SQLite says it in words; PostgreSQL's drivers carry SQLSTATE 42P01 (undefined_table).
    return "no such table" in str(exc) or getattr(exc.orig, "sqlstate", None) == "42P01"

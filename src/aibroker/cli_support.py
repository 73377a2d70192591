"""What the domains' command lines share: one database session for one command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

T = TypeVar("T")


def with_session(work: Callable[[Any], Awaitable[T]], *, commit: bool = False) -> T:
    """Run `work(session)` on a fresh engine (disposed after); a domain error becomes
    `error: <message>` on stderr and exit code 1."""
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

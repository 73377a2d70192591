"""Database stalls for money tests: hold the wallet's lock from another connection, the way
a long transaction (or a `pg_sleep` inside one) would, so the money writer waits on it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import text

from aibroker.db import is_sqlite, make_sync_engine


@contextlib.contextmanager
def wallet_locked(database_url: str, organization_id: str) -> Iterator[None]:
    """PostgreSQL: the wallet row FOR UPDATE; SQLite: the database's write lock (BEGIN IMMEDIATE)."""
    engine = make_sync_engine(database_url, pooled=False)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if is_sqlite(database_url):
            raw.driver_connection.isolation_level = None  # type: ignore[union-attr]
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute("SELECT id FROM wallets WHERE organization_id = %s FOR UPDATE", (organization_id,))
        yield
    finally:
        with contextlib.suppress(Exception):
            raw.rollback()
        raw.close()
        engine.dispose()


def wallet_money(engine, organization_id: str) -> tuple[int, int, int]:
    """(balance, held, sum of its open holds) of one wallet."""
    with engine.connect() as conn:
        balance, held, wallet_id = conn.execute(
            text("SELECT balance_micros, held_micros, id FROM wallets WHERE organization_id = :o"), {"o": organization_id}
        ).one()
        holds = conn.execute(
            text("SELECT COALESCE(SUM(amount_micros), 0) FROM wallet_holds WHERE wallet_id = :w"), {"w": wallet_id}
        ).scalar_one()
    return int(balance), int(held), int(holds)

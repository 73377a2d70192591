"""Alembic environment: one schema, run on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic import context

from aibroker.db import is_sqlite, make_sync_engine
from aibroker.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = make_sync_engine(url, pooled=False)  # no lingering connections
        with engine.connect() as connection:
            _run(connection, url)
    else:
        _run(connectable, url)


def _run(connection, url) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=is_sqlite(url),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()

"""Alembic environment: one schema, run on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic import context

from aibroker.db import is_sqlite, make_sync_engine
from aibroker.models import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK = 0x41_49_42_52  # "AIBR": the advisory lock key that serialises migrations


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
        if connection.dialect.name == "postgresql":
            # Several processes may start at once on a new database: one migrates, the
            # others wait here and then find nothing left to do.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        context.run_migrations()


run_migrations_online()

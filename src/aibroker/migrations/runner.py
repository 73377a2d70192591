"""Run Alembic from inside the package, so `aibroker migrate` works from any directory."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from aibroker.config import get_settings
from aibroker.db import is_sqlite


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "aibroker:migrations")
    cfg.set_main_option("sqlalchemy.url", url or get_settings().database.database_url)
    return cfg


def upgrade(url: str | None = None) -> None:
    """Bring the database to the newest schema (every head: domains add their own branches).
    Safe when several processes start at once: they migrate one after the other (PostgreSQL
    takes an advisory lock in env.py; a SQLite file is locked here)."""
    url = url or get_settings().database.database_url
    with _sqlite_file_lock(url):
        command.upgrade(alembic_config(url), "heads")


@contextlib.contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    database = make_url(url).database if is_sqlite(url) else None
    if not database or database == ":memory:":
        yield
        return
    with open(Path(database).with_name(Path(database).name + ".migrate-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield

"""Run Alembic from inside the package, so `aibroker migrate` works from any directory."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from aibroker.config import get_settings


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "aibroker:migrations")
    cfg.set_main_option("sqlalchemy.url", url or get_settings().database.database_url)
    return cfg


def upgrade(url: str | None = None) -> None:
    """Bring the database to the newest schema (every head: domains add their own branches)."""
    command.upgrade(alembic_config(url), "heads")

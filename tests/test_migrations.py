"""`aibroker serve` migrates before it listens, and a deployment may start several
processes at once on a new database: they must all come up, on one schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url

from aibroker.db import make_sync_engine
from aibroker.migrations.runner import alembic_config
from tests.conftest import DATABASES, PG_URL

PROCESSES = 4


def _fresh_database(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'new.db'}"
    assert PG_URL
    url = make_url(PG_URL).set(database=f"{make_url(PG_URL).database}_migrations")
    admin = make_sync_engine(url.set(database="postgres").render_as_string(hide_password=False), pooled=False)
    with admin.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    return url.render_as_string(hide_password=False)


@pytest.mark.parametrize("kind", DATABASES)
def test_processes_starting_together_on_a_new_database_all_migrate(kind: str, tmp_path: Path) -> None:
    url = _fresh_database(kind, tmp_path)
    migrate = f"from aibroker.migrations.runner import upgrade; upgrade({url!r})"
    processes = [subprocess.Popen([sys.executable, "-c", migrate], stderr=subprocess.PIPE) for _ in range(PROCESSES)]
    failures = [p.stderr.read().decode()[-2000:] for p in processes if p.wait(timeout=120) != 0]  # type: ignore[union-attr]
    assert failures == []
    engine = make_sync_engine(url, pooled=False)
    try:
        with engine.connect() as conn:
            versions = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()
    assert versions == set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


@pytest.mark.parametrize("kind", DATABASES)
def test_the_migrated_schema_is_the_models_schema(kind: str, tmp_path: Path) -> None:
    """Migrations and models never drift apart: tables, columns, indexes, constraints."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from aibroker.migrations.runner import upgrade
    from aibroker.models import Base

    url = _fresh_database(kind, tmp_path)
    upgrade(url)
    engine = make_sync_engine(url, pooled=False)
    try:
        with engine.connect() as conn:
            drift = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert drift == []


@pytest.mark.parametrize("kind", DATABASES)
def test_commands_on_a_database_never_migrated_say_so(kind: str, tmp_path: Path) -> None:
    import os

    url = _fresh_database(kind, tmp_path)
    env = {**os.environ, "AIBROKER_DATABASE_URL": url, "AIBROKER_LOG_LEVEL": "warning"}
    aibroker = Path(sys.executable).parent / "aibroker"
    for command in (["plan", "list"], ["catalog", "list"], ["wallet", "show", "acme"]):
        done = subprocess.run([str(aibroker), *command], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        assert "run `aibroker migrate` first" in done.stderr and "Traceback" not in done.stderr

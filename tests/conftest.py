"""Shared fixtures: databases (SQLite always, PostgreSQL when AIBROKER_TEST_DATABASE_URL is
set), a running broker over real HTTP, and the fake OpenAI upstream."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from aibroker.db import make_sync_engine
from aibroker.migrations.runner import upgrade
from aibroker.models import Base
from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.broker import BrokerServer, serving


def _per_worker(pg_url: str | None, redis_url: str | None) -> tuple[str | None, str | None]:
    """Under pytest-xdist each worker gets its own PostgreSQL database and Redis db, so
    workers never truncate or flush each other's data."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return pg_url, redis_url
    index = int(worker[2:])
    if pg_url:
        parsed = make_url(pg_url)
        pg_url = parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)
    if redis_url:
        parsed_redis = urlparse(redis_url)
        base = int(parsed_redis.path.lstrip("/") or 0)
        redis_url = parsed_redis._replace(path=f"/{(base - index) % 16}").geturl()
    return pg_url, redis_url


PG_URL, REDIS_URL = _per_worker(os.environ.get("AIBROKER_TEST_DATABASE_URL"), os.environ.get("AIBROKER_TEST_REDIS_URL"))

# PostgreSQL runs only when configured (CI always configures it): the parameter is not
# generated otherwise, so nothing is silently skipped.
DATABASES = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _ensure_pg_database(url: str) -> None:
    import psycopg

    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{parsed.database}"')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating per test is slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> str:
    assert PG_URL
    _ensure_pg_database(PG_URL)
    engine = make_sync_engine(PG_URL, pooled=False)
    with engine.begin() as conn:  # a clean slate: earlier runs may have left another schema
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(PG_URL)
    return PG_URL


def _truncate_pg(url: str) -> None:
    engine = make_sync_engine(url, pooled=False)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite, and PostgreSQL when configured."""
    if request.param == "sqlite":
        path = tmp_path / "aibroker.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_migrated")
        _truncate_pg(url)
        yield url


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test") as fake:
        yield fake


@pytest.fixture
def upstream(fake_openai: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The fake OpenAI, reset for this test."""
    fake_openai.reset()
    yield fake_openai
    fake_openai.reset()


@pytest.fixture
def broker_env(upstream: FakeOpenAI, tmp_path: Path) -> dict[str, str]:
    """Environment of a test broker: the fake OpenAI as `openai`, fast retries, blob storage
    under the test's own directory."""
    return {
        "AIBROKER_STORAGE_DIR": str(tmp_path / "storage"),
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": upstream.base_url,
        "AIBROKER_ADMIN_TOKEN": "test-admin-token",
        "AIBROKER_RETRY_BASE_SECONDS": "0.01",
        "AIBROKER_RETRY_MAX_SECONDS": "0.05",
        "AIBROKER_UPSTREAM_TIMEOUT_SECONDS": "5",
        "AIBROKER_MOCK_LATENCY_MS": "300",
    }


@pytest.fixture
def broker(database_url: str, broker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[BrokerServer]:
    """A broker serving real HTTP on a free port, on the test database."""
    with serving(database_url, broker_env, monkeypatch) as server:
        yield server

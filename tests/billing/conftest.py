"""Billing test helpers: the aibroker CLI as a subprocess, and money reads."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aibroker.db import make_sync_engine

ROOT = Path(__file__).resolve().parents[2]
AIBROKER = str(ROOT / ".venv" / "bin" / "aibroker")
ADMIN = "test-admin-token"


def run_cli(database_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`aibroker ARGS` in its own process against `database_url`."""
    env = {**os.environ, "AIBROKER_DATABASE_URL": database_url, "AIBROKER_LOG_LEVEL": "warning"}
    done = subprocess.run([AIBROKER, *args], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    if check and done.returncode != 0:
        raise AssertionError(f"aibroker {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def cli_json(database_url: str, *args: str) -> Any:
    return json.loads(run_cli(database_url, *args).stdout)


def wallet_row(broker: Any, org_id: str) -> Any:
    from aibroker.models import Wallet

    broker.flush()
    return broker.rows(Wallet, Wallet.organization_id == org_id)[0]


# These tests are about money: plan rate limits and quotas (tested in tests/limits) stay out of the way.
NO_LIMITS = {"AIBROKER_LIMITS_ENABLED": "false"}


@pytest.fixture
def broker_env(broker_env):
    return {**broker_env, **NO_LIMITS}


@pytest.fixture
def org(broker):
    return broker.create_org("Acme", credit="10")


@pytest.fixture
def admin(broker):
    with broker.admin() as client:
        yield client


@pytest.fixture
def db(database_url: str):
    engine = make_sync_engine(database_url, pooled=False)
    yield engine
    engine.dispose()

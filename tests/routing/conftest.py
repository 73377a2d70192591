"""Fixtures of the routing tests: a controllable clock, and loading a YAML configuration
into a running broker (then reloading its snapshot, as the admin API does)."""

from __future__ import annotations

import asyncio
import datetime as dt
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aibroker.kit.clock import set_clock
from aibroker.routing.config_file import load_file
from aibroker.routing.router import find_runtime


class Clock:
    """A frozen clock the test moves by hand (the broker runs in this process)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, now: dt.datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> Iterator[Clock]:
    frozen = Clock(dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC))
    set_clock(frozen)
    try:
        yield frozen
    finally:
        set_clock(None)


def reload_routing(broker: Any) -> None:
    """Make the broker's process see the configuration now (the admin API does this itself)."""
    runtime = find_runtime(broker.services)
    asyncio.run_coroutine_threadsafe(runtime.reload(), broker.services.writer.loop).result(timeout=10)


def load_yaml(broker: Any, tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / "routing.yaml"
    path.write_text(textwrap.dedent(text))
    result = asyncio.run(load_file(path, database_url=broker.database_url))
    reload_routing(broker)
    return result


# The mock configuration most tests use: free (limits) and premium (fallback chain) plans.
MOCK_CONFIG = """
plans: [free, professional]
profiles: [usuaria, admin]
providers:
  - {slug: mock, display_name: Mock, default_model: mock-chat}
features:
  - {slug: resumo, name: Resumo, category: analysis}
  - {slug: juridico, name: Relatorios, category: generation}
  - {slug: sentimento, name: Sentimento, category: analysis, mode: consensus, consensus_strategy: majority}
feature_providers:
  - {feature: sentimento, provider: mock, model: mock-vote-a, role: voting, weight: 1}
  - {feature: sentimento, provider: mock, model: mock-vote-b, role: voting, weight: 1}
  - {feature: sentimento, provider: mock, model: mock-vote-c, role: voting, weight: 3}
  - {feature: sentimento, provider: mock, model: mock-chat, role: consensus, weight: 1}
matrix:
  - {plan: free, feature: resumo, provider: mock, model: mock-chat, daily_limit: 3, monthly_limit: 5}
  - {plan: free, profile: admin, feature: resumo, provider: mock, model: mock-chat}
  - {plan: professional, feature: resumo, providers: [{provider: mock, model: mock-down}, {provider: mock, model: mock-chat}]}
  - {plan: professional, feature: juridico, provider: mock, model: mock-text}
  - {plan: professional, feature: sentimento, providers: [{provider: mock, model: mock-vote-a}, {provider: mock, model: mock-vote-b}, {provider: mock, model: mock-vote-c}]}
  - {plan: free, feature: sentimento, providers: [{provider: mock, model: mock-vote-a}, {provider: mock, model: mock-vote-c}], daily_limit: 2}
"""


@pytest.fixture
def routed(broker: Any, tmp_path: Path) -> Any:
    """The broker with MOCK_CONFIG loaded."""
    load_yaml(broker, tmp_path, MOCK_CONFIG)
    return broker


ADMIN_TOKEN = "test-admin-token"  # tests.support.broker's platform service key


def as_platform(org_id: str, **extra: str) -> dict[str, str]:
    """Headers of the platform's service key acting for `org_id`: it may name any profile or group."""
    return {"authorization": f"Bearer {ADMIN_TOKEN}", "x-organization-id": org_id, **extra}


def routing_key(broker: Any, org_id: str, *, profiles: list[str] | None = None, groups: list[str] | None = None,
                profile: str | None = None) -> str:
    """A tenant key the platform allowed these profiles / groups (a tenant key names no other)."""
    body: dict[str, Any] = {"name": "routing", "allowed_profiles": profiles, "allowed_groups": groups}
    if profile is not None:
        body["profile"] = profile
    with broker.client() as http:
        created = http.post("/api/keys", json=body, headers=as_platform(org_id))
    assert created.status_code == 201, created.text
    return created.json()["key"]

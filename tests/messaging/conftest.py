"""Fixtures of the messaging tests: the fake Graph and TikTok APIs, a broker pointed at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aibroker.kit.clock import set_clock
from tests.fakes.meta_graph import FakeGraphAPI
from tests.fakes.tiktok_api import FakeTikTokAPI

CRON_SECRET = "cron-test-secret"


@pytest.fixture(scope="session")
def graph_server() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="session")
def tiktok_server() -> Iterator[FakeTikTokAPI]:
    with FakeTikTokAPI() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def graph(graph_server: FakeGraphAPI) -> Iterator[FakeGraphAPI]:
    graph_server.reset()
    graph_server.tokens.clear()
    yield graph_server
    graph_server.reset()


@pytest.fixture
def tiktok(tiktok_server: FakeTikTokAPI) -> Iterator[FakeTikTokAPI]:
    tiktok_server.reset()
    tiktok_server.tokens.clear()
    yield tiktok_server
    tiktok_server.reset()


@pytest.fixture
def broker_env(broker_env: dict[str, str], graph: FakeGraphAPI, tiktok: FakeTikTokAPI) -> dict[str, str]:
    return {
        **broker_env,
        "CRON_SECRET": CRON_SECRET,
        "AIBROKER_DEFAULT_MODEL": "mock/mock-chat",  # the auto-responder's replies come from the mock provider
        "AIBROKER_META_GRAPH_URL": graph.base_url,
        "AIBROKER_TIKTOK_API_URL": tiktok.base_url,
        "AIBROKER_JOB_BACKOFF_BASE_SECONDS": "30",
    }


@pytest.fixture
def clock() -> Iterator[list]:
    """A controllable clock: clock[0] is added to real time (seconds)."""
    import datetime as dt

    offset = [0.0]
    set_clock(lambda: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset[0]))
    yield offset
    set_clock(None)

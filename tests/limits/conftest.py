"""Limits and cache tests run on the in-process backend, and on Redis when
AIBROKER_TEST_REDIS_URL is set (the parameter is not generated otherwise)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import redis

from aibroker.kit import clock
from tests.conftest import REDIS_URL

BACKENDS = ["memory"] + (["redis"] if REDIS_URL else [])


def flush_redis() -> None:
    assert REDIS_URL
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        flush_redis()
    return request.param


@pytest.fixture
def broker_env(broker_env: dict[str, str], backend: str) -> dict[str, str]:
    """The shared test broker environment, plus Redis for counters and the cache when asked."""
    env = {**broker_env, "AIBROKER_PLANS_REFRESH_SECONDS": "0.2"}
    if backend == "redis":
        env["AIBROKER_REDIS_URL"] = REDIS_URL  # type: ignore[assignment]
    return env


class MovableClock:
    """kit.clock moved by hand (the broker runs in this process, so it follows)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)


@pytest.fixture
def movable_clock() -> Iterator[MovableClock]:
    moving = MovableClock()
    clock.set_clock(moving.now)
    try:
        yield moving
    finally:
        clock.set_clock(None)

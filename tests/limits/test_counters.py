"""The window counters on each `limits` storage, with an injected clock."""

from __future__ import annotations

import asyncio
import datetime as dt

from aibroker.limits.counters import WindowCounters, make_storage, window_of
from tests.conftest import REDIS_URL


def test_windows_roll_over_on_the_injected_clock(backend):
    now = [1_800_000_000.0]  # a fixed instant; moved by hand below
    counters = WindowCounters(make_storage(REDIS_URL if backend == "redis" else None), clock=lambda: now[0])

    async def scenario() -> list[int]:
        seen = []
        for step in (0, 30, 29.9, 0.2):  # same minute, same minute, last instant, next minute
            now[0] += step
            window = window_of("minute", now[0], phase=0)
            seen.append(await counters.add("t:rollover", window, 1, now[0]))
        return seen

    assert asyncio.run(scenario()) == [1, 2, 3, 1]


def test_calendar_windows_and_phase():
    at = dt.datetime(2026, 2, 28, 23, 59, 59, tzinfo=dt.UTC).timestamp()
    month = window_of("month", at)
    assert month.id == "month202602" and dt.datetime.fromtimestamp(month.end, dt.UTC) == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert window_of("day", at).reset_after(at) == 1
    shifted = window_of("minute", 1000.0, phase=25)  # windows start at :25 of each minute
    assert shifted.end == 1045.0 and window_of("minute", 1045.0, phase=25).id != shifted.id

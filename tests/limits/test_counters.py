"""The window counters on each `limits` storage, with an injected clock."""

from __future__ import annotations

import asyncio
import datetime as dt

from aibroker.limits.counters import WindowCounters, make_counters, make_storage, window_of
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


def test_batched_counts_share_keys_with_single_ones_and_stay_exact(backend):
    counters = make_counters(REDIS_URL if backend == "redis" else None)
    now = 1_800_000_000.0
    windows = [("t:a", window_of("minute", now)), ("t:b", window_of("day", now)), ("t:c", window_of("month", now))]

    async def scenario() -> tuple[list[int], int, list[int], int]:
        await counters.storage.reset()
        first = await counters.add_many(windows, 2, now)
        single = await counters.add("t:b", windows[1][1], 1, now)  # the same key, one at a time
        await asyncio.gather(*(counters.add_many(windows, 1, now) for _ in range(50)))  # exact under concurrency
        seen = await counters.get_many(windows)
        through_storage = await counters.get("t:c", windows[2][1])
        await counters.aclose()
        return first, single, seen, through_storage

    first, single, seen, through_storage = asyncio.run(scenario())
    assert first == [2, 2, 2] and single == 3
    assert seen == [52, 53, 52] and through_storage == 52


def test_add_then_get_in_one_call(backend):
    counters = make_counters(REDIS_URL if backend == "redis" else None)
    now = 1_800_000_000.0
    minute, day = window_of("minute", now), window_of("day", now)

    async def scenario() -> tuple[list[int], list[int]]:
        await counters.storage.reset()
        await counters.add("t:tokens", day, 40, now)
        result = await counters.add_many_then_get([("t:r1", minute), ("t:r2", day)], 1, [("t:tokens", day), ("t:none", day)], now)
        await counters.aclose()
        return result

    assert asyncio.run(scenario()) == ([1, 1], [40, 0])

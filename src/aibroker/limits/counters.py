"""Window counters on a `limits` storage: MemoryStorage in-process, RedisStorage shared.

Why our own windows over `limits`' strategies: the window a count belongs to is computed
from *our* clock (kit.clock, movable in tests) and is part of the storage key, so every
process agrees on it, a counter's key does not change when a plan's limit changes, the
reset time is known without another round trip, and calendar quotas (day, month) are the
same mechanism. The storage does what `limits` is good at: an atomic INCRBY + EXPIRE (one
Lua call on Redis), which is what makes the counts exact across processes.

Rolling windows (minute, hour) are fixed windows shifted by a stable per-scope phase
(the scope's creation second for keys and organizations), so tenants do not all roll
over at the same instant.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from limits.aio.storage import MemoryStorage, RedisStorage, Storage

from aibroker.kit.clock import utcnow

ROLLING = {"minute": 60, "hour": 3600}


KEY_PREFIX = "aibroker:limits"


def make_storage(redis_url: str | None) -> Storage:
    if not redis_url:
        return MemoryStorage()
    # limits' async Redis storage, through redis-py (coredis is not a dependency).
    return RedisStorage("async+" + redis_url, implementation="redispy", key_prefix=KEY_PREFIX)


def make_counters(redis_url: str | None) -> WindowCounters:
    """In-process counters, or Redis ones that also batch a request's counters in one round trip."""
    batch = redis.Redis.from_url(redis_url) if redis_url else None
    return WindowCounters(make_storage(redis_url), batch=batch)


def clock_seconds() -> float:
    return utcnow().timestamp()


@dataclass(frozen=True, slots=True)
class Window:
    id: str
    end: float  # epoch seconds

    def reset_after(self, now: float) -> float:
        return max(0.0, self.end - now)


def window_of(period: str, now: float, phase: float = 0.0) -> Window:
    """The window of `period` containing `now`: minute/hour (shifted by `phase`), day, month (UTC)."""
    if period in ROLLING:
        size = ROLLING[period]
        shift = phase % size
        index = int((now - shift) // size)
        return Window(f"{period}{index}", (index + 1) * size + shift)
    day = dt.datetime.fromtimestamp(now, dt.UTC)
    if period == "day":
        start = day.replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(start.strftime("day%Y%m%d"), (start + dt.timedelta(days=1)).timestamp())
    if period == "month":
        days = calendar.monthrange(day.year, day.month)[1]
        start = day.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return Window(start.strftime("month%Y%m"), (start + dt.timedelta(days=days)).timestamp())
    raise ValueError(f"unknown period {period!r}")


class WindowCounters:
    """Atomic per-window counters. `clock` returns epoch seconds (injectable for tests)."""

    def __init__(self, storage: Storage, clock: Callable[[], float] = clock_seconds, batch: redis.Redis | None = None) -> None:
        self.storage = storage
        self.clock = clock
        self.shared = isinstance(storage, RedisStorage)
        # A request touches up to ~8 counters: on Redis they go in one pipeline (one round
        # trip) on the same keys the storage uses, instead of one round trip each.
        self._batch = batch

    @staticmethod
    def key(name: str, window: Window) -> str:
        return f"{name}:{window.id}"

    async def add(self, name: str, window: Window, amount: int, now: float) -> int:
        """Add `amount` (negative to give back) and return the new count, atomically."""
        # The key outlives its window by a minute: garbage collection only, never semantics.
        expiry = int(window.reset_after(now)) + 60
        return int(await self.storage.incr(self.key(name, window), expiry, amount=amount))

    async def get(self, name: str, window: Window) -> int:
        return int(await self.storage.get(self.key(name, window)))

    async def add_many(self, adds: Sequence[tuple[str, Window]], amount: int, now: float) -> list[int]:
        """`add` for each (name, window), in one round trip on Redis. INCRBY is atomic per
        key, which is all exactness needs; EXPIRE only collects old windows."""
        if self._batch is None or len(adds) < 2:
            return [await self.add(name, window, amount, now) for name, window in adds]
        pipe = self._batch.pipeline(transaction=False)
        self._queue_adds(pipe, adds, amount, now)
        results = await pipe.execute()
        return [int(count) for count in results[0::2]]

    def _queue_adds(self, pipe: Any, adds: Sequence[tuple[str, Window]], amount: int, now: float) -> None:
        for name, window in adds:
            key = f"{KEY_PREFIX}:{self.key(name, window)}"
            pipe.incrby(key, amount)
            pipe.expire(key, int(window.reset_after(now)) + 60)

    async def add_many_then_get(
        self, adds: Sequence[tuple[str, Window]], amount: int, gets: Sequence[tuple[str, Window]], now: float
    ) -> tuple[list[int], list[int]]:
        """`add_many`, then `get_many`, in one round trip on Redis (an admission's counters)."""
        if self._batch is None or len(adds) + len(gets) < 2:
            return await self.add_many(adds, amount, now), await self.get_many(gets)
        pipe = self._batch.pipeline(transaction=False)
        self._queue_adds(pipe, adds, amount, now)
        for name, window in gets:
            pipe.get(f"{KEY_PREFIX}:{self.key(name, window)}")
        results = await pipe.execute()
        added = results[: 2 * len(adds)]
        return [int(count) for count in added[0::2]], [int(value or 0) for value in results[2 * len(adds):]]

    async def get_many(self, gets: Sequence[tuple[str, Window]]) -> list[int]:
        if self._batch is None or len(gets) < 2:
            return [await self.get(name, window) for name, window in gets]
        values = await self._batch.mget([f"{KEY_PREFIX}:{self.key(name, window)}" for name, window in gets])
        return [int(value or 0) for value in values]

    async def aclose(self) -> None:
        if self._batch is not None:
            await self._batch.aclose()

    async def clear_all(self) -> None:
        """Tests and benchmarks: drop every counter of this storage."""
        await self.storage.reset()

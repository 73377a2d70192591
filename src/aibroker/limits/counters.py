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
from collections.abc import Callable
from dataclasses import dataclass

from limits.aio.storage import MemoryStorage, RedisStorage, Storage

from aibroker.kit.clock import utcnow

ROLLING = {"minute": 60, "hour": 3600}


def make_storage(redis_url: str | None) -> Storage:
    if not redis_url:
        return MemoryStorage()
    # limits' async Redis storage, through redis-py (coredis is not a dependency).
    return RedisStorage("async+" + redis_url, implementation="redispy", key_prefix="aibroker:limits")


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

    def __init__(self, storage: Storage, clock: Callable[[], float] = clock_seconds) -> None:
        self.storage = storage
        self.clock = clock
        self.shared = isinstance(storage, RedisStorage)

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

    async def clear_all(self) -> None:
        """Tests and benchmarks: drop every counter of this storage."""
        await self.storage.reset()

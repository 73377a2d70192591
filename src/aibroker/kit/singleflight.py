"""Single-flight: concurrent callers asking for the same key share one load.

A cold process taking a burst would otherwise send one identical query per request for
the same API key (or organization), and exhaust its connection pool doing it. With
`SingleFlight.run`, the first caller starts the load and every caller for that key awaits
the same result. The load runs as its own task, so a caller that is cancelled (its client
left) neither cancels it for the others nor loses it. Errors reach every waiter and are not
remembered: the next caller after a failure loads again. Caching the result is the caller's
job; this only joins loads that overlap in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        flight = self._flights.get(key)
        if flight is None or flight.get_loop() is not asyncio.get_running_loop():
            flight = asyncio.ensure_future(load())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(flight)

    def _landed(self, key: K, flight: asyncio.Task[V]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: every waiter may have gone; don't warn "never retrieved"

    def forget(self, key: K | None = None) -> None:
        """Callers from now on load afresh (after a change here): the loads in flight may have
        read the old state. Their current waiters still get their results."""
        if key is None:
            self._flights.clear()
        else:
            self._flights.pop(key, None)

    def __len__(self) -> int:  # loads in flight now
        return len(self._flights)

"""The process's routing snapshot, kept fresh without a query per request.

Every configuration change bumps `routing_state.version` in its own transaction. Each
process reads that one number at most every `check_seconds` (lazily, in a background
task started by the hot path: the request never waits for it) and reloads the whole
snapshot only when the number moved. A change made through this process's admin API
reloads at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.models import RoutingState
from aibroker.routing.snapshot import Snapshot, load_snapshot

log = logging.getLogger(__name__)


class RoutingRuntime:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, check_seconds: float = 2.0) -> None:
        self._sessions = sessions
        self.check_seconds = check_seconds
        self.snapshot = Snapshot()
        self._checked = 0.0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, sessions: async_sessionmaker[AsyncSession], check_seconds: float = 2.0) -> RoutingRuntime:
        runtime = cls(sessions, check_seconds=check_seconds)
        await runtime.reload()
        return runtime

    def current(self) -> Snapshot:
        """The snapshot to route with now; schedules a version check when one is due."""
        now = time.monotonic()
        if now - self._checked >= self.check_seconds and (self._task is None or self._task.done()):
            self._checked = now
            try:
                self._task = asyncio.get_running_loop().create_task(self._check())
            except RuntimeError:  # no loop (a synchronous caller): the next async caller checks
                self._checked = 0.0
        return self.snapshot

    async def reload(self) -> Snapshot:
        async with self._sessions() as session:
            self.snapshot = await load_snapshot(session)
        self._checked = time.monotonic()
        return self.snapshot

    async def _check(self) -> None:
        try:
            async with self._sessions() as session:
                version = await session.scalar(select(RoutingState.version).where(RoutingState.id == 1))
                if (version or 0) != self.snapshot.version:
                    self.snapshot = await load_snapshot(session)
                    log.info("routing configuration reloaded", extra={"fields": {"version": self.snapshot.version}})
        except Exception:  # a failed check keeps the current snapshot; the next one retries
            log.exception("routing version check failed")

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

"""A/B splits as a routing step: which model a request of a split feature is sent to.

The routing router asks `SplitBook.apply` first (routing/router.py). A split applies to a
chat request of its organization and feature that names no model (absent or `auto`): an
explicit model is the caller's choice and wins. The arm is chosen by a hash of
organization + feature + end user (the `user` of the request, else the signed-in user, else
the request id), so one end user always gets the same arm while the weights stay the same;
the chosen model then goes through the routing matrix like an explicit one (a routed feature
must allow it) with its fallbacks. The arm is written on every usage record of the request.

Each process holds every active split in memory (the table is small) and reloads it when a
cheap signature query (count and latest change) moves, at most every `check_seconds`; a
change made through this process reloads at once. The hot path never waits for a query.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.catalog.registry import CHAT
from aibroker.gateway.context import CallContext
from aibroker.models import AiSplit

log = logging.getLogger(__name__)
BUCKETS = 10_000  # weights are whole percents: 100 buckets each
AUTO_MODELS = frozenset({None, "auto", "aibroker/auto"})


@dataclass(frozen=True, slots=True)
class Arm:
    name: str
    model: str
    weight: int


@dataclass(frozen=True, slots=True)
class Split:
    id: str
    organization_id: str
    feature: str
    arms: tuple[Arm, ...]

    def arm_for(self, user: str) -> Arm:
        return self.arms[bucket_index([a.weight for a in self.arms], bucket(self.organization_id, self.feature, user))]


def bucket(organization_id: str, feature: str, user: str) -> int:
    digest = hashlib.sha256(f"{organization_id}\x00{feature}\x00{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def bucket_index(weights: list[int], value: int) -> int:
    """The arm whose share of the BUCKETS holds `value` (weights sum to 100)."""
    edge = 0
    for index, weight in enumerate(weights):
        edge += weight * (BUCKETS // 100)
        if value < edge:
            return index
    return len(weights) - 1


def split_of(row: AiSplit) -> Split:
    arms = tuple(Arm(a["name"], a["model"], int(a["weight"])) for a in row.arms)
    return Split(row.id, row.organization_id, row.feature, arms)


class SplitBook:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, check_seconds: float = 2.0) -> None:
        self._sessions = sessions
        self.check_seconds = check_seconds
        self._splits: dict[tuple[str, str], Split] = {}
        self._signature: tuple[Any, ...] | None = None
        self._checked = 0.0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, sessions: async_sessionmaker[AsyncSession], check_seconds: float = 2.0) -> SplitBook:
        book = cls(sessions, check_seconds=check_seconds)
        await book.reload()
        return book

    async def _read_signature(self, session: AsyncSession) -> tuple[Any, ...]:
        row = (await session.execute(select(func.count(AiSplit.id), func.max(AiSplit.updated_at)))).one()
        return tuple(row)

    async def reload(self) -> None:
        async with self._sessions() as session:
            signature = await self._read_signature(session)
            rows = (await session.scalars(select(AiSplit).where(AiSplit.active.is_(True)))).all()
        self._splits = {(r.organization_id, r.feature): split_of(r) for r in rows}
        self._signature = signature
        self._checked = time.monotonic()

    async def _check(self) -> None:
        try:
            async with self._sessions() as session:
                signature = await self._read_signature(session)
            if signature != self._signature:
                await self.reload()
        except Exception:  # a failed check keeps the current splits; the next one retries
            log.exception("A/B split check failed")

    def _maybe_check(self) -> None:
        now = time.monotonic()
        if now - self._checked >= self.check_seconds and (self._task is None or self._task.done()):
            self._checked = now
            try:
                self._task = asyncio.get_running_loop().create_task(self._check())
            except RuntimeError:
                self._checked = 0.0

    def find(self, organization_id: str, feature: str | None) -> Split | None:
        self._maybe_check()
        return self._splits.get((organization_id, feature)) if feature else None

    def apply(self, ctx: CallContext, requested: str | None, kind: str) -> str | None:
        """The model to route: the split arm's (noted on `ctx.ab_split`), else `requested`."""
        if kind != CHAT or requested not in AUTO_MODELS:
            return requested
        split = self.find(ctx.principal.organization_id, ctx.feature)
        if split is None:
            return requested
        arm = split.arm_for(ctx.user_id or ctx.principal.user_id or ctx.request_id)
        ctx.ab_split = (split.id, arm.name)
        return arm.model

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

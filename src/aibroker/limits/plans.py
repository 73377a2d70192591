"""Plans as data: an immutable in-memory snapshot (the hot path never queries for a plan),
refreshed in the background every `plans_refresh_seconds` and at once after a change here."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.db import upsert_insert
from aibroker.kit.clock import utcnow
from aibroker.limits.defaults import DEFAULT_PLANS, UNLIMITED, full_row
from aibroker.models import PlanRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Plan:
    slug: str
    name: str
    price_micros: int = 0
    max_users: int | None = None
    max_recordings: int | None = None
    max_storage_bytes: int | None = None
    requests_per_minute: int | None = None
    requests_per_hour: int | None = None
    tokens_per_minute: int | None = None
    user_requests_per_minute: int | None = None
    user_requests_per_hour: int | None = None
    user_tokens_per_minute: int | None = None
    monthly_token_quota: int | None = None
    daily_token_quota: int | None = None
    monthly_request_quota: int | None = None
    daily_request_quota: int | None = None
    allowed_models: tuple[str, ...] | None = None
    margin_bps: int | None = None
    max_prompt_chars: int | None = None
    max_messages: int | None = None
    batch_discount_bps: int | None = None  # off batch lines' charge; None: no discount

    @classmethod
    def from_row(cls, row: PlanRow) -> Plan:
        data = {f.name: getattr(row, f.name) for f in fields(cls)}
        if data["allowed_models"] is not None:
            data["allowed_models"] = tuple(data["allowed_models"])
        return cls(**data)

    def allows(self, model_id: str, model_name: str) -> bool:
        return self.allowed_models is None or model_id in self.allowed_models or model_name in self.allowed_models

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["allowed_models"] = list(self.allowed_models) if self.allowed_models is not None else None
        return data


# Used only if the plans table cannot be read yet: an unknown plan is never "no limits".
_FALLBACK = {p["slug"]: Plan(**{k: v for k, v in full_row(p).items()}) for p in DEFAULT_PLANS}


async def ensure_default_plans(session: AsyncSession) -> int:
    """Insert default plans that are missing (never overwrites an operator's edits). Several
    processes start at once: a plan another one inserted first is skipped, not an error."""
    have = set((await session.scalars(select(PlanRow.slug))).all())
    missing = [p for p in DEFAULT_PLANS if p["slug"] not in have]
    if not missing:
        return 0
    now = utcnow()
    stmt = upsert_insert(session, PlanRow).values([{**full_row(p), "created_at": now} for p in missing])
    result = await session.execute(stmt.on_conflict_do_nothing(index_elements=["slug"]))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class PlanBook:
    """Every plan, by slug. Reads are dictionary lookups."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], refresh_seconds: float) -> None:
        self._sessions = sessions
        self._refresh_seconds = refresh_seconds
        self._plans: dict[str, Plan] = dict(_FALLBACK)
        self._loaded_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    async def load(self) -> None:
        async with self._sessions() as session:
            rows = (await session.scalars(select(PlanRow))).all()
        self._plans = {r.slug: Plan.from_row(r) for r in rows} or dict(_FALLBACK)
        self._loaded_at = time.monotonic()

    async def start(self) -> None:
        async with self._sessions() as session:
            await ensure_default_plans(session)
            await session.commit()
        await self.load()

    def get(self, slug: str) -> Plan:
        """The plan (an unknown slug falls back to FREE: fail closed, never unlimited)."""
        self._maybe_refresh()
        return self._plans.get(slug) or self._plans.get("free") or _FALLBACK["free"]

    def known(self, slug: str) -> bool:
        return slug in self._plans

    def all(self) -> list[Plan]:
        return sorted(self._plans.values(), key=lambda p: (p.price_micros, p.slug))

    def margin_bps(self, slug: str) -> int | None:
        return self.get(slug).margin_bps

    def is_unlimited(self, slug: str) -> bool:
        return slug == UNLIMITED

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._loaded_at < self._refresh_seconds:
            return
        if self._refreshing is None or self._refreshing.done():
            self._loaded_at = time.monotonic()  # one refresh at a time; stale reads meanwhile are fine
            self._refreshing = asyncio.ensure_future(self._refresh())

    async def _refresh(self) -> None:
        try:
            await self.load()
        except Exception:
            log.exception("reloading plans failed; keeping the previous snapshot")

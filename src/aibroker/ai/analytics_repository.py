"""All SQL of the analytics: sums over the hourly rollups. Every query is scoped by the
caller's organization (or, for the platform admin, by an optional one)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai.analytics_measures import Measures
from aibroker.ai.rollup_shape import HIST_COLUMNS, MEASURES
from aibroker.models import UsageRollup

HOUR = dt.timedelta(hours=1)
R = UsageRollup.__table__.c
_SUMS = [func.sum(R[name]).label(name) for name in (*MEASURES, *HIST_COLUMNS)]
# What the money breakdowns and top users read: a narrow sum reads far less per row.
MONEY = ("requests", "billed_cost_micros", "provider_cost_micros")
CACHE = ("cache_hit_input_tokens", "cache_hit_output_tokens", "cache_hit_billed_micros")
GROUP_COLUMNS = {
    "hour": R.bucket_start, "day": R.local_date, "model": R.model, "provider": R.provider,
    "feature": R.feature, "user": R.user_id, "key": R.api_key_id, "organization": R.organization_id,
}


@dataclass(frozen=True, slots=True)
class Scope:
    """Organization (None: all) and the time range. An hourly bucket counts when it overlaps
    [start, end): the range is widened to whole hours of each organization's zone."""

    organization_id: str | None
    start: dt.datetime
    end: dt.datetime

    def where(self) -> list[Any]:
        conditions = [R.bucket_start > self.start - HOUR, R.bucket_start < self.end]
        if self.organization_id is not None:
            conditions.append(R.organization_id == self.organization_id)
        return conditions


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def grouped(
        self, scope: Scope, groups: list[str], *, order_by_cost: bool = False, limit: int | None = None,
        having_cache_hits: bool = False, only: tuple[str, ...] | None = None,
    ) -> list[tuple[tuple[Any, ...], Measures]]:
        """Sums per group (all measures and the histogram, or `only` these measures)."""
        columns = [GROUP_COLUMNS[g] for g in groups]
        sums = _SUMS if only is None else [func.sum(R[name]).label(name) for name in only]
        query = select(*columns, *sums).where(*scope.where())
        if having_cache_hits:
            query = query.where(R.cache_hits > 0)
        if columns:
            query = query.group_by(*columns)
        if order_by_cost:
            query = query.order_by(func.sum(R.billed_cost_micros).desc(), *columns)
        elif columns:
            query = query.order_by(*columns)
        if limit is not None:
            query = query.limit(limit)
        rows = (await self.session.execute(query)).all()
        return [(tuple(row[: len(columns)]), Measures.from_row(row)) for row in rows]

    async def count_groups(self, scope: Scope, group: str) -> int:
        column = GROUP_COLUMNS[group]
        inner = select(column).where(*scope.where()).group_by(column).subquery()
        return int(await self.session.scalar(select(func.count()).select_from(inner)) or 0)

    async def billed_since(
        self, organization_id: str | None, first_local_date: str, last_local_date: str, not_before: dt.datetime
    ) -> int:
        """Billed micros on local dates [first, last] (the month so far, in each organization's
        zone); `not_before` (a little before the month began anywhere) keeps the scan short."""
        query = select(func.coalesce(func.sum(R.billed_cost_micros), 0)).where(
            R.local_date >= first_local_date, R.local_date <= last_local_date, R.bucket_start >= not_before
        )
        if organization_id is not None:
            query = query.where(R.organization_id == organization_id)
        return int(await self.session.scalar(query) or 0)

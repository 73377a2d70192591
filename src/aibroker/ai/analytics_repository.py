"""All SQL of the analytics: sums over the rollup cubes (ai/rollup_cubes.py), each query on the
one cube whose grain fits it. Every query is scoped by the caller's organization (or, for the
platform admin, by an optional one)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai.analytics_measures import Measures
from aibroker.ai.rollup_cubes import HOURLY, ORGS, PLATFORM, USERS, Cube
from aibroker.models import UsageRollup, UsageRollupOrg, UsageRollupPlatform, UsageRollupUser

HOUR = dt.timedelta(hours=1)
TABLES: dict[Cube, Table] = {HOURLY: UsageRollup.__table__, USERS: UsageRollupUser.__table__,  # type: ignore[dict-item]
                             PLATFORM: UsageRollupPlatform.__table__, ORGS: UsageRollupOrg.__table__}
# group name -> column, per cube
GROUP_COLUMNS = {
    HOURLY: {"hour": "bucket_start", "day": "local_date", "model": "model", "provider": "provider", "feature": "feature",
             "organization": "organization_id"},
    USERS: {"day": "local_date", "user": "user_id", "key": "api_key_id", "organization": "organization_id"},
    PLATFORM: {"hour": "bucket_start", "day": "day", "model": "model", "provider": "provider", "feature": "feature"},
    ORGS: {"day": "day", "organization": "organization_id"},
}
# What the money breakdowns and top users read: a narrow sum reads far less per row.
MONEY = ("requests", "billed_cost_micros", "provider_cost_micros")


@dataclass(frozen=True, slots=True)
class Scope:
    """Organization (None: all), the time range and the zone its days are in. An hourly bucket
    counts when it overlaps [start, end); so does a day in the daily cubes."""

    organization_id: str | None
    start: dt.datetime
    end: dt.datetime
    tz: dt.tzinfo = dt.UTC

    def days(self, tz: dt.tzinfo) -> tuple[str, str]:
        """First and last date (in `tz`) that overlap the range."""
        last = self.end - dt.timedelta(microseconds=1)
        return self.start.astimezone(tz).date().isoformat(), last.astimezone(tz).date().isoformat()


def cube_for(scope: Scope, groups: list[str]) -> Cube:
    if "user" in groups or "key" in groups:
        return USERS
    if scope.organization_id is not None:
        return HOURLY
    return ORGS if "organization" in groups else PLATFORM


def where(cube: Cube, scope: Scope) -> list[Any]:
    c = TABLES[cube].c
    if cube is USERS:
        first, last = scope.days(scope.tz)
        conditions = [c.local_date >= first, c.local_date <= last]
    elif cube is ORGS:
        first, last = scope.days(dt.UTC)
        conditions = [c.day >= first, c.day <= last]
    else:
        conditions = [c.bucket_start > scope.start - HOUR, c.bucket_start < scope.end]
    if scope.organization_id is not None and cube is not PLATFORM:
        conditions.append(c.organization_id == scope.organization_id)
    return conditions


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def grouped(
        self, scope: Scope, groups: list[str], *, order_by_cost: bool = False, limit: int | None = None,
        only: tuple[str, ...] | None = None, count: list[int] | None = None,
    ) -> list[tuple[tuple[Any, ...], Measures]]:
        """Sums per group (all the cube's measures and histogram, or `only` these measures).
        `count`, when given, receives the number of groups before the limit (one scan, not two)."""
        cube = cube_for(scope, groups)
        table = TABLES[cube]
        columns = [table.c[GROUP_COLUMNS[cube][g]] for g in groups]
        names = cube.added if only is None else only
        sums = [func.sum(table.c[name]).label(name) for name in names]
        if count is not None:
            sums.append(func.count().over().label("groups_count"))
        query = select(*columns, *sums).where(*where(cube, scope))
        if columns:
            query = query.group_by(*columns)
        if order_by_cost:
            query = query.order_by(func.sum(table.c.billed_cost_micros).desc(), *columns)
        elif columns:
            query = query.order_by(*columns)
        if limit is not None:
            query = query.limit(limit)
        rows = (await self.session.execute(query)).all()
        if count is not None:
            count.append(int(rows[0].groups_count) if rows else 0)
        return [(tuple(row[: len(columns)]), Measures.from_row(row)) for row in rows]

    async def billed_since(self, organization_id: str | None, first_date: str, last_date: str, not_before: dt.datetime) -> int:
        """Billed micros on dates [first, last]: the organization's local dates, or the
        platform's UTC dates; `not_before` (a little before the month began) keeps the scan short."""
        if organization_id is None:
            c = TABLES[PLATFORM].c
            query = select(func.coalesce(func.sum(c.billed_cost_micros), 0)).where(
                c.day >= first_date, c.day <= last_date, c.bucket_start >= not_before)
        else:
            c = TABLES[HOURLY].c
            query = select(func.coalesce(func.sum(c.billed_cost_micros), 0)).where(
                c.organization_id == organization_id, c.local_date >= first_date, c.local_date <= last_date,
                c.bucket_start >= not_before)
        return int(await self.session.scalar(query) or 0)

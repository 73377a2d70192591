"""The analytics report for the current organization (AnalyticsService, over the rollups),
with the margin the organization is billed at, as GET /api/ai/analytics computes it."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai.analytics_service import AnalyticsService
from aibroker.models import Organization


def margin_of(svc: Any):  # type: ignore[no-untyped-def]
    def margin(org: Organization) -> int:
        if org.margin_bps is not None:
            return org.margin_bps
        plan = svc.gateway.plan_margin(org.plan) if svc.gateway.plan_margin is not None else None
        return svc.settings.billing.default_margin_bps if plan is None else plan

    return margin


async def report(svc: Any, session: AsyncSession, org: Organization, *, start: dt.datetime, end: dt.datetime,
                 group_by: str, limit: int = 20) -> dict[str, Any]:
    return await AnalyticsService(session, svc.catalog, margin_of(svc)).report(
        organization_id=org.id, tz_name=org.timezone or "UTC", start=start.astimezone(dt.UTC), end=end.astimezone(dt.UTC),
        group_by=group_by, limit=limit, platform=False,
    )


async def reports(svc: Any, org: Organization, *asked: dict[str, Any]) -> list[dict[str, Any]]:
    """Several reports at once, each on its own session: a page's charts cost the slowest one,
    not their sum (SQLite's connections run in threads, PostgreSQL's in the server)."""

    async def one(kwargs: dict[str, Any]) -> dict[str, Any]:
        async with svc.db.sessions() as session:
            return await report(svc, session, org, **kwargs)

    return list(await asyncio.gather(*(one(kwargs) for kwargs in asked)))

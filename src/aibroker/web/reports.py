"""The analytics report for the current organization (AnalyticsService, over the rollups),
as GET /api/ai/analytics computes it."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai.analytics_service import AnalyticsService
from aibroker.models import Organization


async def report(svc: Any, session: AsyncSession, org: Organization, *, start: dt.datetime, end: dt.datetime,
                 group_by: str, limit: int = 20) -> dict[str, Any]:
    return await AnalyticsService(session).report(
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

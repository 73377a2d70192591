"""In-process counters start where the database says the current period stands.

With the in-memory backend (one process), quota counters would restart at zero on every
restart; so at startup the current day's and month's usage is read from usage_records
(requests: distinct request ids; tokens: successful, non-cached calls) and added to the
counters. With Redis the counters live in Redis and survive restarts: no seeding.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.limits.counters import WindowCounters, window_of
from aibroker.limits.rules import REQUESTS, TOKENS
from aibroker.models import UsageRecord

_TOKENS = func.coalesce(func.sum(UsageRecord.input_tokens + UsageRecord.output_tokens), 0)
_SUCCESS = (UsageRecord.status == "success", UsageRecord.cached.is_(False))


async def seed_quota_counters(session: AsyncSession, counters: WindowCounters) -> int:
    now = counters.clock()
    seeded = 0
    for period in ("day", "month"):
        window = window_of(period, now)
        since = dt.datetime.fromtimestamp(window.end, dt.UTC)
        since = _period_start(period, since)
        rows = await session.execute(
            select(UsageRecord.organization_id, func.count(func.distinct(UsageRecord.request_id)))
            .where(UsageRecord.created_at >= since)
            .group_by(UsageRecord.organization_id)
        )
        for org, count in rows:
            await counters.add(f"o:{org}:{REQUESTS}", window, int(count), now)
            seeded += 1
        rows = await session.execute(
            select(UsageRecord.organization_id, _TOKENS).where(UsageRecord.created_at >= since, *_SUCCESS)
            .group_by(UsageRecord.organization_id)
        )
        for org, tokens in rows:
            if tokens:
                await counters.add(f"o:{org}:{TOKENS}", window, int(tokens), now)
        if period == "month":
            rows = await session.execute(
                select(UsageRecord.api_key_id, _TOKENS)
                .where(UsageRecord.created_at >= since, UsageRecord.api_key_id.is_not(None), *_SUCCESS)
                .group_by(UsageRecord.api_key_id)
            )
            for key, tokens in rows:
                if tokens:
                    await counters.add(f"k:{key}:{TOKENS}", window, int(tokens), now)
    return seeded


def _period_start(period: str, end: dt.datetime) -> dt.datetime:
    if period == "day":
        return end - dt.timedelta(days=1)
    last = end - dt.timedelta(days=1)
    return last.replace(day=1)

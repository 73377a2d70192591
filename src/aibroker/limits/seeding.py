"""In-process counters start where the database says the current period stands.

With the in-memory backend (one process), quota counters would restart at zero on every
restart; so at startup the current day's and month's usage is read from usage_records
(requests: distinct request ids; tokens: successful, non-cached calls), per organization
and per API key, and added to the counters. With Redis the counters live in Redis and
survive restarts: no seeding.
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


# Quota counters that have a calendar window: the organization's and each API key's.
_SCOPES = (("o", UsageRecord.organization_id), ("k", UsageRecord.api_key_id))


async def seed_quota_counters(session: AsyncSession, counters: WindowCounters) -> int:
    now = counters.clock()
    seeded = 0
    for period in ("day", "month"):
        window = window_of(period, now)
        since = _period_start(period, dt.datetime.fromtimestamp(window.end, dt.UTC))
        for prefix, column in _SCOPES:
            rows = await session.execute(
                select(column, func.count(func.distinct(UsageRecord.request_id)))
                .where(UsageRecord.created_at >= since, column.is_not(None))
                .group_by(column)
            )
            for owner, count in rows:
                await counters.add(f"{prefix}:{owner}:{REQUESTS}", window, int(count), now)
                seeded += 1
            rows = await session.execute(
                select(column, _TOKENS).where(UsageRecord.created_at >= since, column.is_not(None), *_SUCCESS).group_by(column)
            )
            for owner, tokens in rows:
                if tokens:
                    await counters.add(f"{prefix}:{owner}:{TOKENS}", window, int(tokens), now)
    return seeded


def _period_start(period: str, end: dt.datetime) -> dt.datetime:
    if period == "day":
        return end - dt.timedelta(days=1)
    last = end - dt.timedelta(days=1)
    return last.replace(day=1)

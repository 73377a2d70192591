"""The `cache` section of GET /api/ai/usage: hits, hit rate and what the hits saved."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.billing.pricing import cost_of
from aibroker.models import UsageRecord
from aibroker.providers.base import Usage


async def cache_summary(
    session: AsyncSession, catalog: Any, organization_id: str, margin_bps: int,
    since: dt.datetime | None = None, until: dt.datetime | None = None,
) -> dict[str, Any]:
    """saved_cost_micros: the hits priced as fresh calls (tokens x price x margin) minus what they were billed."""
    scope = [UsageRecord.organization_id == organization_id, UsageRecord.status == "success"]
    if since is not None:
        scope.append(UsageRecord.created_at >= since)
    if until is not None:
        scope.append(UsageRecord.created_at < until)
    answered = await session.scalar(select(func.count()).select_from(UsageRecord).where(*scope)) or 0
    rows = await session.execute(
        select(
            UsageRecord.model, func.count(), func.sum(UsageRecord.input_tokens), func.sum(UsageRecord.output_tokens),
            func.sum(UsageRecord.billed_cost_micros),
        ).where(*scope, UsageRecord.cached.is_(True)).group_by(UsageRecord.model)
    )
    hits = saved = 0
    for model, count, input_tokens, output_tokens, billed in rows:
        hits += int(count)
        entry = catalog.get(model)
        if entry is not None:
            full = cost_of(entry, Usage(input_tokens=int(input_tokens or 0), output_tokens=int(output_tokens or 0)), margin_bps)
            saved += max(0, full.billed_micros - int(billed or 0))
    return {"hits": hits, "requests": int(answered), "hit_rate": round(hits / answered, 4) if answered else 0.0,
            "saved_cost_micros": saved}

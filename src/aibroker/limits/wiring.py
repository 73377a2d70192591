"""Builds the limits and cache services of one process (called from app.Services.start)."""

from __future__ import annotations

import logging

from aibroker.cache.service import ResponseCache
from aibroker.config import Settings
from aibroker.db import Database
from aibroker.limits.admission import PlanAdmission
from aibroker.limits.counters import make_counters
from aibroker.limits.events import QuotaEvents
from aibroker.limits.plans import PlanBook
from aibroker.limits.seeding import seed_quota_counters
from aibroker.limits.tenants import TenantDirectory

log = logging.getLogger(__name__)


async def start_limits(settings: Settings, db: Database) -> tuple[PlanBook, PlanAdmission, ResponseCache]:
    redis_url = settings.database.redis_url
    plans = PlanBook(db.sessions, settings.limits.plans_refresh_seconds)
    await plans.start()
    tenants = TenantDirectory(db.sessions, settings.server.auth_cache_seconds)
    counters = make_counters(redis_url)
    if not counters.shared and settings.limits.limits_enabled:
        async with db.sessions() as session:
            await seed_quota_counters(session, counters)
    admission = PlanAdmission(
        settings=settings.limits, plans=plans, tenants=tenants, counters=counters, events=QuotaEvents(db.sessions)
    )
    cache = ResponseCache(settings.cache, tenants, redis_url=redis_url)
    return plans, admission, cache

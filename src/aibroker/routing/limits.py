"""Daily and monthly limits of the plan matrix, counted against the usage records in the
organization's time zone, and seed 003's `resolve_for_request`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import BrokerError
from aibroker.models import UsageRecord
from aibroker.routing.snapshot import Candidate, Resolution, Snapshot


def zone(name: str | None) -> dt.tzinfo:
    try:
        return ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


@dataclass(frozen=True, slots=True)
class Windows:
    """The current local day and month, as UTC instants."""

    day_start: dt.datetime
    day_end: dt.datetime
    month_start: dt.datetime
    month_end: dt.datetime


def windows(now: dt.datetime, timezone: str | None) -> Windows:
    tz = zone(timezone)
    local = now.astimezone(tz)
    day = dt.datetime(local.year, local.month, local.day, tzinfo=tz)
    next_day = dt.datetime.combine(day.date() + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    month = dt.datetime(local.year, local.month, 1, tzinfo=tz)
    next_month = dt.datetime(local.year + (local.month == 12), local.month % 12 + 1, 1, tzinfo=tz)
    utc = dt.UTC
    return Windows(day.astimezone(utc), next_day.astimezone(utc), month.astimezone(utc), next_month.astimezone(utc))


@dataclass(frozen=True, slots=True)
class Counts:
    today: int
    this_month: int


async def count_usage(
    session: AsyncSession, *, organization_id: str, feature: str, user_id: str | None, win: Windows,
    exclude_request: str | None = None,
) -> Counts:
    """Successful requests (distinct request ids: a consensus request counts once) of this
    organization (and user, when given) for this feature in the current day and month."""
    # UTC instants: PostgreSQL compares timestamptz; SQLite stores UTC text in the same format.
    day_start, month_start = win.day_start, win.month_start
    query = select(
        func.count(distinct(UsageRecord.request_id)).filter(UsageRecord.created_at >= day_start),
        func.count(distinct(UsageRecord.request_id)),
    ).where(
        UsageRecord.organization_id == organization_id,
        UsageRecord.feature == feature,
        UsageRecord.created_at >= month_start,
        UsageRecord.status == "success",
    )
    if user_id is not None:
        query = query.where(UsageRecord.user_id == user_id)
    if exclude_request is not None:
        query = query.where(UsageRecord.request_id != exclude_request)
    today, month = (await session.execute(query)).one()
    return Counts(int(today or 0), int(month or 0))


@dataclass(frozen=True, slots=True)
class LimitVerdict:
    allowed: bool
    reason: str  # ok | daily_limit_reached | monthly_limit_reached
    used_today: int
    used_this_month: int
    reset_at: dt.datetime | None = None
    limit: int | None = None
    window: str | None = None  # day | month


def judge(resolution: Resolution, counts: Counts, win: Windows) -> LimitVerdict:
    """Refused when a limit is reached; the reset is the end of the latest exhausted window."""
    daily, monthly = resolution.daily_limit, resolution.monthly_limit
    month_full = monthly is not None and counts.this_month >= monthly
    day_full = daily is not None and counts.today >= daily
    if month_full:
        return LimitVerdict(False, "monthly_limit_reached", counts.today, counts.this_month, win.month_end, monthly, "month")
    if day_full:
        return LimitVerdict(False, "daily_limit_reached", counts.today, counts.this_month, win.day_end, daily, "day")
    return LimitVerdict(True, "ok", counts.today, counts.this_month)


class QuotaExceeded(BrokerError):
    status_code = 429
    error_type = "quota_exceeded"

    def __init__(self, feature: str, verdict: LimitVerdict, now: dt.datetime) -> None:
        assert verdict.reset_at is not None
        retry_after = max(1, int((verdict.reset_at - now).total_seconds() + 0.999))
        per = "daily" if verdict.window == "day" else "monthly"
        super().__init__(
            f"The {per} limit of {verdict.limit} requests for the feature '{feature}' is reached; "
            f"it resets at {verdict.reset_at.isoformat()}.",
            code=verdict.reason,
            headers={"Retry-After": str(retry_after)},
            extra={
                "feature": feature, "limit": verdict.limit, "window": verdict.window,
                "used": verdict.used_today if verdict.window == "day" else verdict.used_this_month,
                "reset_at": verdict.reset_at.isoformat(), "reset_at_unix": int(verdict.reset_at.timestamp()),
            },
        )


@dataclass(frozen=True, slots=True)
class RequestDecision:
    """Seed 003's `resolveAIForRequest` answer: allowed / provider / reason."""

    allowed: bool
    reason: str
    message: str
    provider: Candidate | None
    resolution: Resolution
    limits: LimitVerdict | None = None


async def resolve_for_request(
    session: AsyncSession, snapshot: Snapshot, *, user: str | None, feature: str, plan: str, profile: str,
    group: str | None = None, organization_id: str | None = None, timezone: str | None = None, now: dt.datetime,
) -> RequestDecision:
    """Resolve, then check the matrix's daily and monthly limits (when an organization is
    given) against the usage records."""
    resolution = snapshot.resolve(plan, feature, profile, group, user, now=now)
    if not resolution.allowed:
        return RequestDecision(False, resolution.reason, resolution.message, None, resolution)
    primary = resolution.candidates[0] if resolution.candidates else None
    if organization_id is None or not resolution.has_limits:
        return RequestDecision(True, resolution.reason, resolution.message, primary, resolution)
    win = windows(now, timezone)
    counts = await count_usage(session, organization_id=organization_id, feature=feature, user_id=user, win=win)
    verdict = judge(resolution, counts, win)
    if not verdict.allowed:
        message = f"{verdict.reason.replace('_', ' ')}: {verdict.limit} per {verdict.window}, resets at {verdict.reset_at.isoformat() if verdict.reset_at else ''}"
        return RequestDecision(False, verdict.reason, message, primary, resolution, verdict)
    return RequestDecision(True, resolution.reason, resolution.message, primary, resolution, verdict)

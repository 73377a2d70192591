"""GET /api/ai/analytics (seed 001's metrics and the data of its dashboards)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from aibroker.ai.analytics_service import GROUPS, AnalyticsService
from aibroker.ai.platform_auth import is_platform_admin
from aibroker.ai.rollup_shape import zone
from aibroker.errors import InvalidRequest, NotFound
from aibroker.gateway.http import JSONResponse, authenticate, services
from aibroker.kit.clock import utcnow
from aibroker.models import Organization
from aibroker.tenancy.auth import ORG_HEADER
from aibroker.tenancy.roles import Permission

router = APIRouter(prefix="/api/ai", tags=["Analytics"])
MAX_RANGE = dt.timedelta(days=400)


@router.get("/analytics")
async def analytics(
    request: Request,
    start: str | None = Query(None, alias="from", description="ISO date or datetime, inclusive (a date is midnight "
                              "in the organization's time zone). Default: the start of the current month."),
    end: str | None = Query(None, alias="to", description="ISO date or datetime, exclusive. Default: now."),
    group_by: str = Query("day", description="day | hour | model | provider | feature | user | key"),
    organization_id: str | None = Query(None, description="Platform admin only: one organization (default: all)."),
    limit: int = Query(100, ge=1, le=1000, description="Most series entries for model/provider/feature/user/key."),
) -> Response:
    """Cost, requests, tokens, latency p50/p95/p99, error rate, cache hit rate and savings, top
    users and the month's projected cost, over rollups kept current with every request.

    A tenant (API key, member with VIEW_USAGE, organization code) sees its organization; the
    platform admin (service key, SUPER_ADMIN) sees all organizations or `organization_id`, plus
    revenue, provider cost and margin per organization and provider (`platform`). Buckets are
    hours of the organization's time zone (UTC hours for all organizations): a bucket counts
    when it overlaps [from, to). The user and key breakdowns, top users and the per-organization
    revenue count whole days (a day counts when it overlaps). Top users need an organization:
    user ids are each organization's own."""
    if group_by not in GROUPS:
        raise InvalidRequest(f"'group_by' must be one of: {', '.join(GROUPS)}.", param="group_by", code="invalid_group_by")
    svc = services(request)
    platform = await is_platform_admin(request)
    async with svc.db.sessions() as session:
        if platform:
            org_id = organization_id or request.headers.get(ORG_HEADER)
            org = await _organization(session, org_id) if org_id else None
            tz_name = org.timezone if org is not None else "UTC"
        else:
            principal = await authenticate(request, permission=Permission.VIEW_USAGE)
            if organization_id and organization_id not in (principal.organization_id, principal.organization_slug):
                raise NotFound("No such organization.", code="organization_not_found")
            org = await _organization(session, principal.organization_id)
            tz_name = org.timezone
        tz = zone(tz_name)
        now = utcnow()
        since = _instant(start, "from", tz) or now.astimezone(tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        until = _instant(end, "to", tz) or now
        if since >= until:
            raise InvalidRequest("'from' must be before 'to'.", param="from", code="invalid_range")
        if until - since > MAX_RANGE:
            raise InvalidRequest("The range may span at most 400 days.", param="to", code="range_too_long")

        report = await AnalyticsService(session).report(
            organization_id=org.id if org is not None else None, tz_name=tz_name, start=since.astimezone(dt.UTC),
            end=until.astimezone(dt.UTC), group_by=group_by, limit=limit, platform=platform,
        )
    return JSONResponse(report)


async def _organization(session, ref: str) -> Organization:  # type: ignore[no-untyped-def]
    org = await session.scalar(select(Organization).where((Organization.id == ref) | (Organization.slug == ref)))
    if org is None:
        raise NotFound("No such organization.", code="organization_not_found")
    return org


def _instant(value: str | None, name: str, tz: dt.tzinfo) -> dt.datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"'{name}' must be an ISO date or datetime, e.g. 2026-11-01", param=name) from exc
    if parsed.year < 1971 or parsed.year > 9998:
        raise InvalidRequest(f"'{name}' is out of range.", param=name)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)

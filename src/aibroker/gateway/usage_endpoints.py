"""Usage reporting: totals by day, model, provider and feature; the records themselves."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from aibroker.cache.report import cache_summary
from aibroker.errors import InvalidRequest
from aibroker.gateway.context import CallContext
from aibroker.gateway.http import JSONResponse, authenticate, services
from aibroker.gateway.usage_repository import UsageRepository
from aibroker.kit.money import format_micros
from aibroker.models import UsageRecord
from aibroker.tenancy.roles import Permission

router = APIRouter(prefix="/api/ai", tags=["Usage"])


def _parse_day(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"'{name}' must be an ISO date or datetime, e.g. 2026-11-01", param=name) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@router.get("/usage")
async def usage_summary(
    request: Request,
    start: str | None = Query(None, alias="from", description="ISO date/datetime, inclusive"),
    end: str | None = Query(None, alias="to", description="ISO date/datetime, exclusive"),
) -> Response:
    """Totals for the caller's organization, and the same broken down by day, model, provider and feature."""
    principal = await authenticate(request, permission=Permission.VIEW_USAGE)
    since, until = _parse_day(start, "from"), _parse_day(end, "to")
    org = principal.organization_id
    async with services(request).db.sessions() as session:
        repo = UsageRepository(session)
        totals = await repo.totals(org, since, until)
        result = {
            "organization_id": org,
            "from": since.isoformat() if since else None,
            "to": until.isoformat() if until else None,
            "totals": {**totals, "billed_cost": format_micros(totals["billed_cost_micros"])},
            "by_day": await repo.grouped(org, repo.day_column(), "day", since, until),
            "by_model": await repo.grouped(org, UsageRecord.model, "model", since, until),
            "by_provider": await repo.grouped(org, UsageRecord.provider, "provider", since, until),
            "by_feature": await repo.grouped(org, UsageRecord.feature, "feature", since, until),
        }
        svc = services(request)
        margin = svc.gateway.margin_for(CallContext(request_id="", principal=principal, endpoint="usage"))
        result["cache"] = await cache_summary(session, svc.catalog, org, margin, since, until)
    return JSONResponse(result)


@router.get("/usage/details")
async def usage_details(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
) -> Response:
    """The caller's usage records, newest first, paginated by cursor."""
    principal = await authenticate(request, permission=Permission.VIEW_USAGE)
    async with services(request).db.sessions() as session:
        rows = await UsageRepository(session).page(principal.organization_id, limit=limit, before_id=cursor)
    data = [_record(r) for r in rows]
    return JSONResponse({"object": "list", "data": data, "next_cursor": rows[-1].id if len(rows) == limit else None})


def _record(row: UsageRecord) -> dict:
    return {
        "id": row.id,
        "request_id": row.request_id,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "api_key_id": row.api_key_id,
        "user_id": row.user_id,
        "feature": row.feature,
        "endpoint": row.endpoint,
        "provider": row.provider,
        "model": row.model,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cached_tokens": row.cached_tokens,
        "provider_cost_micros": row.provider_cost_micros,
        "billed_cost_micros": row.billed_cost_micros,
        "margin_bps": row.margin_bps,
        "latency_ms": row.latency_ms,
        "upstream_latency_ms": row.upstream_latency_ms,
        "status": row.status,
        "error_type": row.error_type,
        "error_message": row.error_message,
        "attempt": row.attempt,
        "streamed": row.streamed,
        "cached": row.cached,
    }

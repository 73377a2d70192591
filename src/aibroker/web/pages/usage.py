"""/console/usage: the usage records, filtered (dates, model, feature, status, key), newest
first with keyset paging, and the same selection as CSV. The usage API's repository and
record shape (gateway/usage_repository.py, usage_endpoints._record)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aibroker.ai.rollup_shape import zone
from aibroker.gateway.http import services
from aibroker.gateway.usage_endpoints import _record
from aibroker.gateway.usage_repository import UsageFilter, UsageRepository
from aibroker.models import ApiKey, UsageRecord
from aibroker.tenancy.roles import Permission
from aibroker.web.auth import ConsoleUser, page
from aibroker.web.forms import FormError
from aibroker.web.nav import NavEntry
from aibroker.web.render import render

router = APIRouter()
NAV = [NavEntry("Usage", "/console/usage", Permission.VIEW_USAGE)]
PAGE_SIZE = 50
CSV_BATCH = 1000
STATUSES = ("success", "error", "partial")
CSV_COLUMNS = [  # the API's record fields (usage_endpoints._record), in its order
    "id", "request_id", "created_at", "api_key_id", "user_id", "feature", "endpoint", "provider", "model", "input_tokens",
    "output_tokens", "cached_tokens", "provider_cost_micros", "billed_cost_micros", "margin_bps", "latency_ms",
    "upstream_latency_ms", "status", "error_type", "error_message", "attempt", "streamed", "cached",
]


def _day(value: str | None, name: str, tz: dt.tzinfo, *, end: bool) -> dt.datetime | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise FormError(f"'{name}' must be a date such as 2026-12-01.") from None
    start = dt.datetime.combine(day, dt.time(), tzinfo=tz)
    return start + dt.timedelta(days=1) if end else start  # `to` is inclusive: up to the end of that day


def _short(request: Request, name: str, limit: int) -> str | None:
    value = (request.query_params.get(name) or "").strip()
    if len(value) > limit:
        raise FormError(f"'{name}' is at most {limit} characters.")
    return value or None


def _filters(request: Request, tz_name: str) -> tuple[UsageFilter, dict[str, str]]:
    tz = zone(tz_name)
    status = _short(request, "status", 20)
    if status is not None and status not in STATUSES:
        raise FormError(f"'status' is one of {', '.join(STATUSES)}.")
    chosen = {name: _short(request, name, 120) or "" for name in ("from", "to", "model", "feature", "key")}
    chosen["status"] = status or ""
    filters = UsageFilter(start=_day(chosen["from"], "from", tz, end=False), end=_day(chosen["to"], "to", tz, end=True),
                          model=chosen["model"] or None, feature=chosen["feature"] or None, status=status, api_key_id=chosen["key"] or None)
    return filters, chosen


@router.get("/console/usage")
async def usage_page(request: Request, user: ConsoleUser = Depends(page(Permission.VIEW_USAGE))) -> Response:
    """The usage explorer (VIEW_USAGE)."""
    org = user.organization
    assert org is not None
    error, rows, chosen = None, [], {}
    cursor = _short_cursor(request)
    try:
        filters, chosen = _filters(request, org.timezone or "UTC")
    except FormError as bad:
        error, filters = str(bad), None
    async with services(request).db.sessions() as session:
        keys = (await session.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.organization_id == org.id).order_by(ApiKey.created_at))).all()
        if filters is not None:
            rows = await UsageRepository(session).page_by_time(org.id, limit=PAGE_SIZE, before=cursor, filters=filters)
    query = urlencode({k: v for k, v in chosen.items() if v})
    return render(request, "usage.html", status_code=400 if error else 200, title="Usage", error=error, records=[_record(r) for r in rows],
                  chosen=chosen, statuses=STATUSES, keys=keys, query=query,
                  next_cursor=_cursor_of(rows[-1]) if len(rows) == PAGE_SIZE else None)


def _cursor_of(row: UsageRecord) -> str:
    return f"{row.created_at.isoformat()}_{row.id}"


def _short_cursor(request: Request) -> tuple[dt.datetime, str] | None:
    """The `cursor` (the last record's time and id) of the previous page; a broken one starts over."""
    cursor = request.query_params.get("cursor") or ""
    at, _, record_id = cursor.partition("_")
    if not record_id or len(cursor) > 100:
        return None
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)), record_id


@router.get("/console/usage.csv")
async def usage_csv(request: Request, user: ConsoleUser = Depends(page(Permission.VIEW_USAGE))) -> Response:
    """The filtered records as CSV, newest first, streamed in batches."""
    org = user.organization
    assert org is not None
    try:
        filters, _ = _filters(request, org.timezone or "UTC")
    except FormError as bad:
        return render(request, "error.html", status_code=400, title="Please check the filters", message=str(bad))
    sessions = services(request).db.sessions

    async def chunks() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        before: tuple[dt.datetime, str] | None = None
        while True:
            async with sessions() as session:
                rows = await UsageRepository(session).page_by_time(org.id, limit=CSV_BATCH, before=before, filters=filters)
            for row in rows:
                writer.writerow(_csv_row(_record(row)))
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            if len(rows) < CSV_BATCH:
                return
            before = (rows[-1].created_at, rows[-1].id)

    headers = {"content-disposition": f'attachment; filename="usage-{org.slug}.csv"', "cache-control": "no-store"}
    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers=headers)


def _csv_row(record: dict[str, Any]) -> dict[str, Any]:
    # A cell starting with = + - @ would run as a formula in a spreadsheet: quote it.
    return {k: ("'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v) for k, v in record.items()}

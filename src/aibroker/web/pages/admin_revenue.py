"""Platform page: revenue, provider cost and margin over time and per organization and provider,
from the analytics service that GET /api/ai/analytics answers the platform admin with."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from aibroker.ai.analytics_service import AnalyticsService
from aibroker.errors import BrokerError, InvalidRequest
from aibroker.kit.clock import utcnow
from aibroker.models import Organization
from aibroker.web.charts import bar_chart, line_chart
from aibroker.web.formatting import money
from aibroker.web.pages import admin_common as common

router = APIRouter(prefix="/console/admin/revenue", include_in_schema=False, dependencies=[Depends(common.super_admin)])
NAV = common.nav("Revenue", "/console/admin/revenue")
DEFAULT_DAYS = 30
MAX_DAYS = 400  # as the analytics API
TOP_BARS = 15


def _day(text: str, name: str) -> dt.date | None:
    if not text.strip():
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidRequest(f"'{name}' is a date, e.g. 2026-11-01", param=name) from exc


def window(start: str, end: str) -> tuple[dt.date, dt.date]:
    """[from, to] as whole UTC days (default: the last 30 days, today included)."""
    today = utcnow().date()
    last = _day(end, "to") or today
    first = _day(start, "from") or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidRequest("'from' must not be after 'to'", param="from")
    if (last - first).days >= MAX_DAYS:
        raise InvalidRequest(f"the range may span at most {MAX_DAYS} days", param="to")
    return first, last


def _instant(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


async def report(request: Request, session: AsyncSession, first: dt.date, last: dt.date) -> dict[str, Any]:
    analytics = AnalyticsService(session)
    return await analytics.report(organization_id=None, tz_name="UTC", start=_instant(first),
                                  end=_instant(last + dt.timedelta(days=1)), group_by="day", limit=100, platform=True)


def _days(first: dt.date, last: dt.date, series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every day of the window (days without traffic as zeros), so the line is continuous."""
    by_day = {str(s["key"])[:10]: s for s in series}
    out = []
    day = first
    while day <= last:
        s = by_day.get(day.isoformat(), {})
        out.append({"day": day.isoformat(), "revenue": s.get("cost_micros", 0), "cost": s.get("provider_cost_micros", 0),
                    "margin": s.get("margin_micros", 0)})
        day += dt.timedelta(days=1)
    return out


async def _names(session: AsyncSession, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Organization.id, Organization.name).where(Organization.id.in_(ids)))
    return {i: n for i, n in rows}


def _charts(days: list[dict[str, Any]], orgs: list[dict[str, Any]], providers: list[dict[str, Any]]) -> dict[str, Any]:
    # Bars are drawn from zero up (a negative margin shows in the table below as it is).
    def line(title: str, key: str) -> Any:
        return line_chart(title, [(d["day"], d[key]) for d in days], x_label="Day (UTC)", y_label="USD", fmt=money)

    return {
        "revenue": line("Revenue per day", "revenue"),
        "cost": line("Provider cost per day", "cost"),
        "margin": line("Margin per day", "margin"),
        "orgs": bar_chart("Margin per organization", [(o["name"], max(0, o["margin_micros"])) for o in orgs[:TOP_BARS]],
                          x_label="Organization", y_label="USD", fmt=money),
        "providers": bar_chart("Revenue per provider", [(p["provider"], p["revenue_micros"]) for p in providers[:TOP_BARS]],
                               x_label="Provider", y_label="USD", fmt=money),
    }


@router.get("")
async def revenue(request: Request, start: str = Query("", alias="from"), end: str = Query("", alias="to"),
                  session: AsyncSession = common.SESSION) -> Response:
    """Revenue (billed), provider cost and margin per day, per organization and per provider."""
    try:
        first, last = window(start, end)
    except BrokerError as error:
        return common.page(request, "admin/revenue.html", title="Revenue", error=error, status_code=error.status_code,
                           first=start[:10], last=end[:10], days=[], orgs=[], providers=[], totals=None, charts=None)
    data = await report(request, session, first, last)
    days = _days(first, last, data["series"])
    platform = data["platform"]
    names = await _names(session, [o["organization_id"] for o in platform["organizations"]])
    orgs = [{**o, "name": names.get(o["organization_id"], o["organization_id"])} for o in platform["organizations"]]
    totals = data["totals"]
    return common.page(request, "admin/revenue.html", title="Revenue", first=first.isoformat(), last=last.isoformat(),
                       days=days, orgs=orgs, providers=platform["providers"], charts=_charts(days, orgs, platform["providers"]),
                       totals={"revenue": totals["cost_micros"], "cost": totals["provider_cost_micros"],
                               "margin": totals["margin_micros"], "requests": totals["requests"],
                               "organizations": platform["organizations_count"]})

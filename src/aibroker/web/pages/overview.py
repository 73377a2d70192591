"""/console/overview: balance, spend today and this month with the projection, requests,
error rate, cache savings; cost by day (line) and by model (bar). All from the analytics
rollups (AnalyticsService), as GET /api/ai/analytics."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from aibroker.ai.rollup_shape import zone
from aibroker.billing.wallet_repository import WalletRepository, wallet_view
from aibroker.gateway.http import services
from aibroker.kit.clock import utcnow
from aibroker.tenancy.roles import Permission
from aibroker.web import charts, formatting
from aibroker.web.auth import ConsoleUser, page
from aibroker.web.nav import NavEntry
from aibroker.web.render import render
from aibroker.web.reports import reports

router = APIRouter()
NAV = [NavEntry("Overview", "/console/overview", Permission.VIEW_USAGE)]
CHART_DAYS = 30


def _day_series(series: list[dict], first: dt.date, last: dt.date) -> list[tuple[str, int]]:
    """Every day from `first` to `last`, zero where nothing was spent (a gap is a real zero)."""
    by_day = {str(entry["key"]): int(entry["cost_micros"]) for entry in series}
    days = (last - first).days + 1
    return [((first + dt.timedelta(days=i)).isoformat(), by_day.get((first + dt.timedelta(days=i)).isoformat(), 0)) for i in range(days)]


@router.get("/console/overview")
async def overview(request: Request, user: ConsoleUser = Depends(page(Permission.VIEW_USAGE))) -> Response:
    """The organization at a glance (VIEW_USAGE)."""
    svc = services(request)
    org = user.organization
    assert org is not None
    tz = zone(org.timezone or "UTC")
    now = utcnow().astimezone(tz)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    chart_start = (now - dt.timedelta(days=CHART_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    async with svc.db.sessions() as session:
        wallet = wallet_view(await WalletRepository(session).wallet(org.id))
    month, days = await reports(svc, org, {"start": month_start, "end": now, "group_by": "model", "limit": 10},
                                {"start": chart_start, "end": now, "group_by": "day"})
    daily = _day_series(days["series"], chart_start.date(), now.date())
    money = formatting.money
    by_day = charts.line_chart("Cost by day, last 30 days", daily, x_label="Day", y_label="Cost (USD)", fmt=money)
    by_model = charts.bar_chart("Cost by model, this month", [(str(s["key"]), int(s["cost_micros"])) for s in month["series"]],
                                x_label="Model", y_label="Cost (USD)", fmt=money)
    return render(request, "overview.html", title="Overview", wallet=wallet, totals=month["totals"], projection=month["projection"],
                  today_micros=daily[-1][1] if daily else 0, by_day=by_day, by_model=by_model, models=month["series"])

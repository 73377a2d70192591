"""/console/billing: a month's cost broken down by feature, model and user, and the current
month's projection (seed 001's billing dashboard), from the analytics rollups."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from aibroker.ai.rollup_shape import zone
from aibroker.gateway.http import services
from aibroker.kit.clock import utcnow
from aibroker.tenancy.roles import Permission
from aibroker.web import charts, formatting
from aibroker.web.auth import ConsoleUser, page
from aibroker.web.forms import FormError
from aibroker.web.nav import NavEntry
from aibroker.web.render import render
from aibroker.web.reports import reports

router = APIRouter()
NAV = [NavEntry("Billing", "/console/billing", Permission.MANAGE_BILLING)]
BREAKDOWNS = (("feature", "Feature", "(no feature)"), ("model", "Model", ""), ("user", "User", "(no user id)"))


def _month(value: str | None, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[first instant, first instant of the next month) in the organization's zone; default this month."""
    if value:
        try:
            year, month = (int(part) for part in value.split("-", 1))
            start = now.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
        except ValueError:
            raise FormError("'month' must look like 2026-12.") from None
        if not 2000 <= year <= 2999:
            raise FormError("'month' is out of range.")
    else:
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start > now:
        return start, start  # a future month: an empty range
    return start, min((start + dt.timedelta(days=32)).replace(day=1), now)


@router.get("/console/billing")
async def billing_page(request: Request, user: ConsoleUser = Depends(page(Permission.MANAGE_BILLING))) -> Response:
    """Cost by feature, model and user for a month (MANAGE_BILLING), and this month's projection."""
    svc = services(request)
    org = user.organization
    assert org is not None
    now = utcnow().astimezone(zone(org.timezone or "UTC"))
    chosen = (request.query_params.get("month") or "")[:7]
    try:
        start, end = _month(chosen, now)
    except FormError as bad:
        return render(request, "error.html", status_code=400, title="Please check the month", message=str(bad))
    if start >= end:  # a future month: nothing billed yet
        found = [{"series": [], "totals": {"cost_micros": 0, "requests": 0}, "projection": None}] * len(BREAKDOWNS)
    else:
        found = await reports(svc, org, *({"start": start, "end": end, "group_by": group, "limit": 50} for group, _, _ in BREAKDOWNS))
    sections = []
    for (group, label, blank), answer in zip(BREAKDOWNS, found, strict=True):
        rows = [{"name": str(s["key"] or blank), "cost_micros": int(s["cost_micros"]), "requests": int(s["requests"]),
                 "tokens": int(s["input_tokens"]) + int(s["output_tokens"])} for s in answer["series"]]
        chart = charts.bar_chart(f"Cost by {label.lower()}", [(r["name"], r["cost_micros"]) for r in rows[:12]],
                                 x_label=label, y_label="Cost (USD)", fmt=formatting.money)
        sections.append({"group": group, "label": label, "rows": rows, "chart": chart, "totals": answer["totals"]})
    projection = found[0]["projection"]
    return render(request, "billing.html", title="Billing", sections=sections, projection=projection, month=start.strftime("%Y-%m"),
                  total=sections[0]["totals"]["cost_micros"])

"""/console/leads: the board HOT / WARM / COLD (seed 004's scoring), each lead with its profile
picture (messaging.enrich) and score; /console/leads/{id}: the score history, every change with
its reason, as a chart and a table. Read through messaging.leads, as GET /api/leads."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from aibroker.deps import db_session
from aibroker.messaging import conversations, leads
from aibroker.messaging.channels import CHANNELS
from aibroker.tenancy.roles import Permission
from aibroker.web import charts
from aibroker.web.auth import ConsoleUser, page
from aibroker.web.errors import ConsoleError
from aibroker.web.nav import NavEntry
from aibroker.web.render import render

router = APIRouter()
NAV = [NavEntry("Leads", "/console/leads", Permission.MANAGE_CHANNELS)]
COLUMNS = (("HOT", "Hot", "score 70 or more"), ("WARM", "Warm", "score 40 to 69"), ("COLD", "Cold", "score under 40"))
PER_COLUMN = 100


class BadFilter(ConsoleError):
    status_code = 400
    title = "Please check the filter"


def picture(request: Request, url: str | None) -> str | None:
    """A profile picture the page may show: https (the platforms' CDNs) or this server; else none."""
    if not url:
        return None
    parts, own = urlsplit(url), urlsplit(str(request.base_url))
    if parts.scheme == "https" or (parts.scheme == own.scheme and parts.netloc == own.netloc):
        return url
    return None


def _card(request: Request, lead: Any) -> dict[str, Any]:
    view = leads.lead_view(lead)
    label = view["name"] or view["phone"] or view["external_user_id"]
    initials = "".join(w[0] for w in str(label).split()[:2]).upper() or "?"
    return {**view, "label": label, "initials": initials, "picture": picture(request, view["profile_picture_url"])}


@router.get("/console/leads")
async def board(request: Request, channel: str | None = Query(default=None, max_length=20),
                user: ConsoleUser = Depends(page(Permission.MANAGE_CHANNELS)),
                session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """Leads in three columns by classification, highest score first (MANAGE_CHANNELS)."""
    if channel and channel not in CHANNELS:
        raise BadFilter(f"channel must be one of {', '.join(CHANNELS)}.")
    columns = []
    for key, name, rule in COLUMNS:
        rows = await leads.list_scoped(session, user.organization_id, classification=key, channel=channel or None, limit=PER_COLUMN)
        columns.append({"key": key, "name": name, "rule": rule, "leads": [_card(request, r) for r in rows]})
    return render(request, "msg/leads.html", title="Leads", columns=columns, channel=channel or "", channels=CHANNELS)


@router.get("/console/leads/{lead_id}")
async def lead_detail(request: Request, lead_id: str, user: ConsoleUser = Depends(page(Permission.MANAGE_CHANNELS)),
                      session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """One lead: picture, identity, score and its history (chart and table), its conversations."""
    lead = await leads.get_scoped(session, user.organization_id, lead_id)  # another organization's: 404
    history = await leads.score_history(session, lead.id)
    points = [("start", history[0]["score_before"])] if history else [("now", lead.score)]
    points += [(f"{i}. {e['signal']}", e["score_after"]) for i, e in enumerate(history, 1)]  # short labels: the table has the times
    chart = charts.line_chart(f"Score of {lead.name or lead.external_user_id}", points, x_label="Signal, in order", y_label="Score (0-100)")
    threads = await conversations.list_scoped(session, user.organization_id, lead_id=lead.id, limit=20)
    return render(request, "msg/lead.html", title="Lead", lead=_card(request, lead), history=list(reversed(history)), chart=chart,
                  threads=[conversations.conversation_view(c) for c in threads])

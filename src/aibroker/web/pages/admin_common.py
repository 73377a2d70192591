"""What the platform pages (/console/admin/...) share: the SUPER_ADMIN checks, the database
session, form reading, money parsing, the margin an organization is billed with, and the
POST-redirect-GET with a flash message. Not a page itself (not in PAGE_MODULES)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aibroker.deps import db_session
from aibroker.errors import InvalidRequest
from aibroker.kit.money import to_micros
from aibroker.models import Organization
from aibroker.web import auth
from aibroker.web.flash import flash
from aibroker.web.nav import NavEntry
from aibroker.web.render import render

super_admin = auth.admin_page()  # every platform route: signed in and SUPER_ADMIN (403 otherwise)
csrf = auth.admin_action()  # and every state-changing one carries the session's CSRF token
SESSION = Depends(db_session, scope="function")
MAX_FIELD = 4000


def nav(label: str, path: str) -> list[NavEntry]:
    return [NavEntry(label, path, super_admin=True, section="Platform")]


def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("error", None)
    return render(request, template, status_code=status_code, **context)


def redirect(request: Request, url: str, message: str, kind: str = "ok") -> Response:
    """After a change: back to a page (303), which shows `message` once."""
    return flash(request, RedirectResponse(url, status_code=303), message, kind)


async def form(request: Request) -> dict[str, str]:
    """The submitted fields as bounded strings (files are not expected on these forms)."""
    data = await request.form()
    return {k: v[:MAX_FIELD] for k, v in data.items() if isinstance(v, str)}


def parse_micros(text: str, *, param: str, bound: int) -> int:
    """A signed decimal amount in USD ("-2.50") as integer micro-units, within +-bound."""
    text = text.strip().replace(",", "")
    if not text:
        raise InvalidRequest("enter an amount, e.g. 25 or -2.50", param=param)
    try:
        micros = to_micros(text)
    except ValueError as exc:
        raise InvalidRequest(f"the amount must be a decimal number with at most 6 decimals: {exc}", param=param) from exc
    if micros == 0:
        raise InvalidRequest("an amount of zero moves nothing", param=param)
    if abs(micros) > bound:
        raise InvalidRequest(f"one entry moves at most {bound // 1_000_000:,} USD", param=param)
    return micros


def effective_margin(svc: Any, org: Organization) -> int:
    """The margin the organization's requests are billed with: its own, else its plan's, else the
    platform default (the order GET /api/ai/analytics prices cache savings with)."""
    if org.margin_bps is not None:
        return org.margin_bps
    plan = svc.gateway.plan_margin(org.plan) if svc.gateway.plan_margin is not None else None
    return svc.settings.billing.default_margin_bps if plan is None else plan

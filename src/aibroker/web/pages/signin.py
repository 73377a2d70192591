"""Sign-in, sign-out and the organization switcher."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aibroker.errors import BrokerError
from aibroker.gateway.http import services
from aibroker.models import Organization
from aibroker.tenancy import users
from aibroker.web import csrf, sessions
from aibroker.web.auth import ConsoleUser, load, signed_in
from aibroker.web.errors import PageNotFound, SignedOut
from aibroker.web.flash import flash
from aibroker.web.render import render

router = APIRouter()
HOME = "/console/overview"


def _safe_next(target: str | None) -> str:
    """Only this console's own pages: never an open redirect to another site."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


def _cookie_flags(request: Request) -> dict:
    return {"httponly": True, "samesite": "lax", "secure": request.url.scheme == "https", "path": "/console"}


def _pre_token(request: Request, value: str) -> str:
    return csrf.token_for(services(request).settings.server.secret_key, "pre:" + value)


def _signin_page(request: Request, *, status: int = 200, error: str | None = None, email: str = "", next_path: str = "") -> Response:
    value = request.cookies.get(csrf.PRE_COOKIE) or csrf.new_pre_session_value()
    response = render(request, "signin.html", status_code=status, csrf_token=_pre_token(request, value), error=error, email=email,
                      next_path=_safe_next(next_path or request.query_params.get("next")), title="Sign in")
    response.set_cookie(csrf.PRE_COOKIE, value, max_age=3600, **_cookie_flags(request))
    return response


async def _signed_in(request: Request) -> ConsoleUser | None:
    async with services(request).db.sessions() as session:
        try:
            return await load(request, session)
        except SignedOut:
            return None


@router.get("/console")
@router.get("/console/login")
async def signin_page(request: Request) -> Response:
    """The sign-in form (signed in already: straight to the overview)."""
    if await _signed_in(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return _signin_page(request)


@router.post("/console/login")
async def signin(request: Request) -> Response:
    """Check e-mail and password (the accounts' lockout rules apply), start a session, set its cookie."""
    form = await request.form()
    email, password, next_path = (str(form.get(k) or "") for k in ("email", "password", "next"))
    pre = request.cookies.get(csrf.PRE_COOKIE) or ""
    given = str(form.get(csrf.FIELD) or "")
    if not pre or not hmac.compare_digest(given.encode(), _pre_token(request, pre).encode()):
        return _signin_page(request, status=403, error="The form expired: please sign in again.", email=email[:320], next_path=next_path)
    if not email or not password or len(email) > 320 or len(password) > 256:
        return _signin_page(request, status=400, error="Enter your e-mail and password.", email=email[:320], next_path=next_path)
    svc = services(request)
    async with svc.db.sessions() as session:
        try:
            user = await users.verify_login(session, svc.settings, email=email, password=password)
        except users.LoginFailed as failed:
            await session.commit()  # remember the failed attempt
            return _signin_page(request, status=failed.error.status_code, error=failed.error.message, email=email, next_path=next_path)
        except BrokerError as exc:  # locked
            return _signin_page(request, status=exc.status_code, error=exc.message, email=email, next_path=next_path)
        memberships = await users.memberships_of(session, user.id)
        row, token = await sessions.start(session, user=user, organization_id=memberships[0][1].id if memberships else None)
        await session.commit()
    target = _safe_next(next_path)
    if target == HOME and not memberships and user.is_super_admin:
        target = "/console/admin"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(sessions.COOKIE, token, max_age=int(sessions.LIFETIME.total_seconds()), **_cookie_flags(request))
    response.delete_cookie(csrf.PRE_COOKIE, path="/console")
    return response


@router.get("/console/logout")
async def signout_page(request: Request) -> Response:
    """A sign-out button (signing out changes state, so it is a POST with the CSRF token)."""
    if await _signed_in(request) is None:
        return RedirectResponse("/console/login", status_code=303)
    return render(request, "signout.html", title="Sign out")


@router.post("/console/logout")
async def signout(request: Request, user: ConsoleUser = Depends(signed_in(check_csrf=True))) -> Response:
    """End the session on the server (the cookie stops working everywhere) and clear the cookie."""
    async with services(request).db.sessions() as session:
        await sessions.revoke(session, user.session_id)
        await session.commit()
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/console")
    request.state.console_user = None
    return flash(request, response, "You are signed out.")


@router.post("/console/organization")
async def switch_organization(request: Request, user: ConsoleUser = Depends(signed_in(check_csrf=True))) -> Response:
    """Look at another of your organizations (a platform admin may pick any)."""
    form = await request.form()
    wanted = str(form.get("organization_id") or "")
    allowed = any(org.id == wanted for _, org in user.memberships)
    async with services(request).db.sessions() as session:
        if not allowed and user.is_super_admin:
            allowed = await session.get(Organization, wanted) is not None if wanted else False
        if not allowed:
            raise PageNotFound("You are not a member of that organization.")
        await sessions.switch_organization(session, user.session_id, wanted)
        await session.commit()
    target = _safe_next(str(form.get("next") or ""))
    return RedirectResponse(target, status_code=303)

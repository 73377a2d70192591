"""/console/keys: the organization's API keys. Create (the secret is shown once, on the
answer to the form, and never again), revoke, change limits, name and routing profile.
The JSON API's own routes (tenancy/endpoints.py) do the work, for this user as principal."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aibroker.errors import BrokerError
from aibroker.gateway.http import services
from aibroker.models import ApiKey
from aibroker.routing.router import known_profiles
from aibroker.tenancy import endpoints as key_api
from aibroker.tenancy.roles import Permission
from aibroker.tenancy.routing_authority import DEFAULT_PROFILE
from aibroker.tenancy.scoped import get_scoped
from aibroker.web import forms
from aibroker.web.auth import ConsoleUser, action, page
from aibroker.web.flash import flash
from aibroker.web.nav import NavEntry
from aibroker.web.render import render

router = APIRouter()
NAV = [NavEntry("API keys", "/console/keys", Permission.MANAGE_KEYS)]
LIMITS = {  # field -> (label, highest value the column holds)
    "rpm": ("Requests per minute", key_api.INT32_MAX), "rph": ("Requests per hour", key_api.INT32_MAX),
    "tpm": ("Tokens per minute", key_api.INT32_MAX),
    "daily_request_quota": ("Requests per day", key_api.INT32_MAX), "monthly_request_quota": ("Requests per month", key_api.INT32_MAX),
    "daily_token_quota": ("Tokens per day", key_api.INT64_MAX), "monthly_token_quota": ("Tokens per month", key_api.INT64_MAX),
}


def _limits(form: FormData) -> dict[str, int | None]:
    return {name: forms.integer(form, name, high=high, label=label) for name, (label, high) in LIMITS.items()}


def _profile(form: FormData) -> dict[str, str | None]:
    profile = forms.text(form, "profile", max_length=40)
    return {"profile": None if profile in (None, DEFAULT_PROFILE) else profile}


def _expiry(form: FormData) -> dt.datetime | None:
    raw = forms.text(form, "expires_on", max_length=10, label="Expiry date")
    if raw is None:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise forms.FormError("Expiry date must be a date such as 2027-01-31.") from None
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


async def _page(request: Request, user: ConsoleUser, *, created: object = None, error: str | None = None, status: int = 200) -> Response:
    async with services(request).db.sessions() as session:
        keys = await key_api.list_keys(user.principal(), session)
    return render(request, "keys.html", status_code=status, title="API keys", keys=list(reversed(keys)), created=created, error=error,
                  limits=LIMITS, profiles=sorted(known_profiles(services(request))))


def _back(request: Request, message: str, kind: str = "ok", to: str = "/console/keys") -> Response:
    return flash(request, RedirectResponse(to, status_code=303), message, kind)


@router.get("/console/keys")
async def keys_page(request: Request, user: ConsoleUser = Depends(page(Permission.MANAGE_KEYS))) -> Response:
    """The organization's keys (never the secrets) and the form for a new one (MANAGE_KEYS)."""
    return await _page(request, user)


@router.post("/console/keys")
async def create_key(request: Request, user: ConsoleUser = Depends(action(Permission.MANAGE_KEYS))) -> Response:
    """Create a key and show it, once, on this answer (not a redirect: nothing keeps the secret)."""
    form = await request.form()
    try:
        fields = {"name": forms.text(form, "name", max_length=120, required=True, label="Name"),
                  "default_feature": forms.text(form, "default_feature", max_length=80), "expires_at": _expiry(form),
                  **_limits(form), **_profile(form)}
        body = key_api.KeyCreate(**{k: v for k, v in fields.items() if v is not None})
    except forms.FormError as bad:
        return await _page(request, user, error=str(bad), status=400)
    except ValidationError as bad:
        return await _page(request, user, error=bad.errors()[0]["msg"], status=400)
    try:
        async with services(request).db.sessions() as session:
            created = await key_api.create_key(body, request, user.principal(), session)
            await session.commit()
    except BrokerError as refused:
        return await _page(request, user, error=refused.message, status=refused.status_code)
    return await _page(request, user, created=created, status=201)


@router.get("/console/keys/{key_id}")
async def key_page(request: Request, key_id: str, user: ConsoleUser = Depends(page(Permission.MANAGE_KEYS))) -> Response:
    """One key: its limits, name and profile, editable (another organization's key: 404)."""
    async with services(request).db.sessions() as session:
        key = await get_scoped(session, ApiKey, user.organization_id, key_id, what="API key")
        info = key_api._key_info(key)
    return render(request, "key.html", title=f"Key {info.name}", key=info, limits=LIMITS, profiles=sorted(known_profiles(services(request))))


@router.post("/console/keys/{key_id}")
async def update_key(request: Request, key_id: str, user: ConsoleUser = Depends(action(Permission.MANAGE_KEYS))) -> Response:
    """Save a key's name, limits (empty: none of its own) and routing profile."""
    form = await request.form()
    here = f"/console/keys/{key_id}"
    try:
        # The profile only when changed: a profile the platform granted stays without the user holding it.
        profile = _profile(form) if form.get("profile") != form.get("profile_was") else {}
        body = key_api.KeyUpdate(name=forms.text(form, "name", max_length=120, required=True, label="Name"), **_limits(form), **profile)
    except forms.FormError as bad:
        return _back(request, str(bad), "error", here)
    async with services(request).db.sessions() as session:
        try:
            await key_api.update_key(key_id, body, request, user.principal(), session)
        except BrokerError as refused:
            if refused.status_code == 404:
                raise
            return _back(request, refused.message, "error", here)
    return _back(request, "Key saved.", to=here)


@router.post("/console/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, user: ConsoleUser = Depends(action(Permission.MANAGE_KEYS))) -> Response:
    """Revoke a key: it stops working at once (another organization's key: 404)."""
    async with services(request).db.sessions() as session:
        await key_api.revoke_key(key_id, request, user.principal(), session)
    return _back(request, "Key revoked: it no longer works.")

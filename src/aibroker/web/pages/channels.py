"""/console/channels: seed 004's ChannelConnections. Connect WhatsApp, Instagram, Facebook or
TikTok (secrets are sealed by the messaging service and never shown again), the webhook URL and
the verify token (shown once: it is stored hashed), AI on/off per channel, disconnect.
The same service calls as POST/GET/PATCH/DELETE /api/channels."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aibroker.deps import db_session
from aibroker.errors import BrokerError
from aibroker.gateway.http import services
from aibroker.messaging import channels
from aibroker.messaging.schemas import ChannelCreate
from aibroker.tenancy.roles import Permission
from aibroker.web.auth import ConsoleUser, action, page
from aibroker.web.flash import flash
from aibroker.web.nav import NavEntry
from aibroker.web.render import render

router = APIRouter()
NAV = [NavEntry("Channels", "/console/channels", Permission.MANAGE_CHANNELS)]
MAX_FIELD = 4096  # longer than any platform token; bounds what a form can make us seal

# The connect form of each platform: (form field, label, kind, required). "secret" fields are
# password inputs, sealed by the service and never echoed back into the form.
FIELDS: dict[str, list[tuple[str, str, str, bool]]] = {
    "whatsapp": [("phone_number_id", "Phone number ID", "text", True), ("business_account_id", "WhatsApp Business account ID", "text", False),
                 ("access_token", "Access token", "secret", True)],
    "instagram": [("instagram_account_id", "Instagram account ID", "text", True), ("page_id", "Linked Facebook page ID", "text", False),
                  ("access_token", "Page access token", "secret", True)],
    "facebook": [("page_id", "Page ID", "text", True), ("access_token", "Page access token", "secret", True)],
    "tiktok": [("client_key", "Client key", "text", True), ("business_id", "Business ID (the account's open id)", "text", True),
               ("client_secret", "Client secret", "secret", False), ("access_token", "Access token", "secret", True)],
}
LABELS = {"whatsapp": "WhatsApp", "instagram": "Instagram", "facebook": "Facebook Messenger", "tiktok": "TikTok"}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def webhook_url(request: Request, channel: str, slug: str) -> str:
    return str(request.base_url).rstrip("/") + channels.webhook_path(channel, slug)


async def _page(request: Request, user: ConsoleUser, session: AsyncSession, *, status: int = 200, **extra: Any) -> Response:
    assert user.organization is not None
    rows = await channels.list_connections(session, user.organization_id)
    platform = services(request).settings.messaging
    connections = [{**channels.connection_view(r), "webhook_url": webhook_url(request, r.channel, user.organization.slug)} for r in rows]
    extra.setdefault("values", {})
    extra.setdefault("open_form", None)
    return render(request, "msg/channels.html", status_code=status, title="Channels", connections=connections, fields=FIELDS,
                  labels=LABELS, platform_secret={c: bool(channels.platform_secret(c, platform)) for c in channels.CHANNELS},
                  error=extra.pop("error", None), connected=extra.pop("connected", None), **extra)


@router.get("/console/channels")
async def channels_page(request: Request, user: ConsoleUser = Depends(page(Permission.MANAGE_CHANNELS)),
                        session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """The organization's channel connections and the forms to connect one (MANAGE_CHANNELS)."""
    return await _page(request, user, session)


def _body(channel: str, form: FormData, verify_token: str) -> ChannelCreate:
    """The API's request model, from the form: the same validation as POST /api/channels."""
    credentials = {name: _text(form, f"{channel}_{name}") for name, _, _, _ in FIELDS[channel]}
    options: dict[str, Any] = {}
    template = _text(form, "whatsapp_template_name") if channel == "whatsapp" else ""
    if template:
        options["reengagement_template"] = {"name": template, "language": _text(form, "whatsapp_template_language") or "en_US"}
    return ChannelCreate(channel=channel, credentials={k: v for k, v in credentials.items() if v}, verify_token=verify_token,
                         app_secret=_text(form, f"{channel}_app_secret") or None, ai_enabled=form.get(f"{channel}_ai_enabled") == "on",
                         branch=_text(form, f"{channel}_branch") or None, options=options)


@router.post("/console/channels")
async def connect(request: Request, user: ConsoleUser = Depends(action(Permission.MANAGE_CHANNELS)),
                  session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """Connect a channel. The answer shows the webhook URL and the verify token once; tokens and
    secrets are sealed and never shown again."""
    assert user.organization is not None
    form = await request.form()
    channel = _text(form, "channel")
    if channel not in FIELDS:
        return await _page(request, user, session, status=400, error=f"Choose a channel: {', '.join(FIELDS)}.")
    # Only the non-secret fields go back into a form shown again after an error.
    values = {f"{channel}_{name}": _text(form, f"{channel}_{name}") for name, _, kind, _ in FIELDS[channel] if kind != "secret"}
    values.update({k: _text(form, k) for k in (f"{channel}_branch", "whatsapp_template_name", "whatsapp_template_language")})
    too_long = [k for k, v in form.items() if isinstance(v, str) and len(v) > MAX_FIELD]
    verify_token = _text(form, f"{channel}_verify_token") or secrets.token_urlsafe(24)  # none given: we make one
    try:
        if too_long:
            raise ValueError(f"{too_long[0]} is longer than {MAX_FIELD} characters.")
        body = _body(channel, form, verify_token)
        row = await channels.create_connection(
            session, organization_id=user.organization_id, channel=body.channel, credentials=body.credentials,
            verify_token=body.verify_token, app_secret=body.app_secret, ai_enabled=body.ai_enabled, branch=body.branch,
            options=body.options, platform_secret=channels.platform_secret(channel, services(request).settings.messaging),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return await _page(request, user, session, status=400, error=f"{where}: {first.get('msg')}", values=values, open_form=channel)
    except ValueError as exc:
        return await _page(request, user, session, status=400, error=str(exc), values=values, open_form=channel)
    except BrokerError as exc:  # missing credentials (400), account already connected (409)
        return await _page(request, user, session, status=exc.status_code, error=exc.message, values=values, open_form=channel)
    connected = {"channel": row.channel, "label": LABELS[row.channel], "id": row.id, "verify_token": verify_token,
                 "webhook_url": webhook_url(request, row.channel, user.organization.slug)}
    return await _page(request, user, session, connected=connected)


@router.post("/console/channels/{connection_id}/ai")
async def toggle_ai(request: Request, connection_id: str, user: ConsoleUser = Depends(action(Permission.MANAGE_CHANNELS)),
                    session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """Turn the AI on or off for one channel (another organization's channel: 404)."""
    row = await channels.get_connection(session, user.organization_id, connection_id)
    form = await request.form()
    enabled = form.get("ai_enabled") == "on"
    channels.update_connection(row, ai_enabled=enabled)
    message = f"AI {'on' if enabled else 'off'} for {LABELS[row.channel]} ({row.account_key})."
    return flash(request, RedirectResponse("/console/channels", status_code=303), message)


@router.post("/console/channels/{connection_id}/delete")
async def disconnect(request: Request, connection_id: str, user: ConsoleUser = Depends(action(Permission.MANAGE_CHANNELS)),
                     session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """Disconnect a channel (its leads and conversations stay)."""
    row = await channels.get_connection(session, user.organization_id, connection_id)
    label = f"{LABELS[row.channel]} ({row.account_key})"
    await session.delete(row)
    return flash(request, RedirectResponse("/console/channels", status_code=303), f"Disconnected {label}.")

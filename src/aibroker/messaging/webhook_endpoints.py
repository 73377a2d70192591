"""Platform webhooks (seed 004): GET verification and POST receipt, per tenant
(/api/webhook/{channel}/{tenantSlug}) and shared per platform (/api/webhook/{channel}),
where events are routed to tenants by the account ids inside the payload (one Meta app has
one callback URL). Signatures are checked on the raw bytes; events are stored once and
processed by jobs; the answer is 200 at once."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from aibroker.errors import (
    AuthenticationError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from aibroker.gateway.http import JSONResponse, services
from aibroker.jobs.database import write_sessions
from aibroker.messaging import channels, inbox, normalize
from aibroker.messaging.signatures import header_for, signature_ok
from aibroker.models import ChannelConnection

router = APIRouter(tags=["Webhooks (seed 004)"])
log = logging.getLogger("aibroker.messaging")


def _channel(channel: str) -> str:
    if channel not in channels.CHANNELS:
        raise NotFound(f"No webhook for '{channel}'; use one of {', '.join(channels.CHANNELS)}.")
    return channel


async def _verify(request: Request, channel: str, slug: str | None) -> Response:
    params = request.query_params
    if channel == "tiktok" and "challenge" in params:  # seed 004's TikTok form
        mode, token, challenge = "subscribe", params.get("verify_token"), params.get("challenge")
    else:
        mode, token, challenge = params.get("hub.mode"), params.get("hub.verify_token"), params.get("hub.challenge")
    if mode != "subscribe" or not token or challenge is None:
        raise PermissionDenied("Webhook verification needs hub.mode=subscribe, hub.verify_token and hub.challenge.")
    async with services(request).db.sessions() as session:
        ok = await channels.connections_by_verify_token(session, channel, token, slug)
    if not ok:
        raise PermissionDenied("The verify token does not match.", code="invalid_verify_token")
    return PlainTextResponse(challenge)


@router.get("/api/webhook/{channel}/{slug}", include_in_schema=True)
async def verify_tenant_webhook(channel: str, slug: str, request: Request) -> Response:
    """Webhook verification: answers `hub.challenge` in plain text when `hub.verify_token` matches."""
    return await _verify(request, _channel(channel), slug)


@router.get("/api/webhook/{channel}")
async def verify_shared_webhook(channel: str, request: Request) -> Response:
    """Webhook verification for the platform-wide endpoint (any connection's verify token)."""
    return await _verify(request, _channel(channel), None)


def _check_signature(request: Request, channel: str, raw: bytes, candidates: list[ChannelConnection]) -> list[ChannelConnection]:
    """The candidates whose secret signed this body. 401 without a signature, 403 when none matches."""
    header = request.headers.get(header_for(channel))
    if not header:
        raise AuthenticationError(f"Missing {header_for(channel)} header.", code="missing_signature")
    tolerance = services(request).settings.messaging.tiktok_signature_tolerance_seconds
    signed = [c for c in candidates if signature_ok(channel, raw, header, channels.open_connection(c).app_secret, tolerance)]
    if not signed:
        raise PermissionDenied("The webhook signature does not match.", code="invalid_signature")
    return signed


async def _receive(request: Request, channel: str, slug: str | None) -> Response:
    raw = await request.body()
    if len(raw) > services(request).settings.server.max_body_bytes:
        raise InvalidRequest("The webhook body is too large.")
    sessions = write_sessions(services(request).db)
    async with services(request).db.sessions() as reads:
        if slug is not None:
            candidates = await channels.tenant_connections(reads, slug, channel)
            if not candidates:
                raise NotFound(f"No {channel} connection for '{slug}'.")
            _check_signature(request, channel, raw, candidates)
            events = normalize.parse(channel, raw)
            owned = {(f, getattr(c, f)): c for c in candidates for f in ("account_key", "tiktok_client_key")}
        else:
            events = normalize.parse(channel, raw)
            owned = {}
            for field in {e.account_field for e in events}:
                keys = {e.account_key for e in events if e.account_field == field}
                for c in await channels.connections_by_account(reads, channel, keys, field):
                    owned[(field, getattr(c, field))] = c
            if owned:  # every tenant named in the payload must have signed it
                for connection in {c.id: c for c in owned.values()}.values():
                    _check_signature(request, channel, raw, [connection])
    received = duplicates = ignored = 0
    async with sessions() as session:
        for event in events:
            connection = owned.get((event.account_field, event.account_key))
            if connection is None or not event.external_id or event.external_id == "None":
                ignored += 1
                continue
            if await inbox.store(session, channel, event, connection):
                received += 1
            else:
                duplicates += 1
        await session.commit()
    if ignored:
        log.info("webhook events for unknown accounts ignored", extra={"fields": {"channel": channel, "count": ignored}})
    body: dict[str, Any] = {"received": received, "duplicates": duplicates, "ignored": ignored}
    return JSONResponse(body, status_code=200)


@router.post("/api/webhook/{channel}/{slug}")
async def receive_tenant_webhook(channel: str, slug: str, request: Request) -> Response:
    """Receive a tenant's platform events (signed); each is stored once and processed by a job."""
    return await _receive(request, _channel(channel), slug)


@router.post("/api/webhook/{channel}")
async def receive_shared_webhook(channel: str, request: Request) -> Response:
    """Receive events for every tenant of a platform, routed by the account ids in the payload."""
    return await _receive(request, _channel(channel), None)

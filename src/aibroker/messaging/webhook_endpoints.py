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
from aibroker.ops.body import read_body

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


def _signed_by(request: Request, channel: str, raw: bytes, header: str, connections: list[ChannelConnection]) -> list[ChannelConnection]:
    """The connections whose own signing secret (or, lacking one, the platform's) signed this body."""
    tolerance = services(request).settings.messaging.tiktok_signature_tolerance_seconds
    signed = []
    for connection in connections:
        secret = channels.signing_secret(connection, services(request).settings.messaging)
        if secret and signature_ok(channel, raw, header, secret, tolerance):
            signed.append(connection)
    return signed


def _forged() -> PermissionDenied:
    return PermissionDenied("The webhook signature does not match.", code="invalid_signature")


def _route(events: list[normalize.InboundEvent], owned: dict[tuple[str, str], ChannelConnection],
           signed: list[ChannelConnection]) -> list[tuple[normalize.InboundEvent, ChannelConnection | None]]:
    """Each event with its connection (None: an account we do not serve). An event routed to a
    connection whose secret did not sign the body is a forgery, whoever else signed it."""
    signers = {c.id for c in signed}
    routed = []
    for event in events:
        connection = owned.get((event.account_field, event.account_key))
        if connection is not None and connection.id not in signers:
            raise _forged()
        routed.append((event, connection))
    return routed


def _unambiguous(connections: list[ChannelConnection]) -> dict[tuple[str, str], ChannelConnection]:
    """(column, id) -> connection. A TikTok client key names an app, which several connections
    may share: an event routed only by it goes to no one rather than to a guess."""
    owned: dict[tuple[str, str], ChannelConnection] = {}
    shared: set[tuple[str, str]] = set()
    for connection in connections:
        for column in ("account_key", "tiktok_client_key"):
            value = getattr(connection, column)
            if value is None:
                continue
            if (column, value) in owned and owned[(column, value)].id != connection.id:
                shared.add((column, value))
            owned[(column, value)] = connection
    return {k: c for k, c in owned.items() if k not in shared}


async def _receive(request: Request, channel: str, slug: str | None) -> Response:
    # Bounded while reading: an oversized body is refused before it is held in memory.
    raw = await read_body(request, services(request).settings.server.max_body_bytes)
    header = request.headers.get(header_for(channel))
    async with services(request).db.sessions() as reads:
        if slug is not None:
            candidates = await channels.tenant_connections(reads, slug, channel)
            if not candidates:
                raise NotFound(f"No {channel} connection for '{slug}'.")
            if not header:
                raise AuthenticationError(f"Missing {header_for(channel)} header.", code="missing_signature")
            signed = _signed_by(request, channel, raw, header, candidates)
            if not signed:
                raise _forged()
            routed = _route(normalize.parse(channel, normalize.load(raw)), _unambiguous(candidates), signed)
        else:
            if not header:
                raise AuthenticationError(f"Missing {header_for(channel)} header.", code="missing_signature")
            routed = await _shared(request, reads, channel, raw, header)
    received = duplicates = ignored = 0
    async with write_sessions(services(request).db)() as session:
        for event, connection in routed:
            if connection is None:
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


async def _shared(request: Request, reads: Any, channel: str, raw: bytes, header: str) -> list[tuple[normalize.InboundEvent, ChannelConnection | None]]:
    """The platform-wide route: the connections are named inside the body, so it is read
    (defensively, unverified) only to find them; every one named must have signed it, and only
    then is its shape checked. A body naming none must carry the platform's signature, if any."""
    try:
        body = normalize.load(raw)
    except InvalidRequest:
        body = None  # unreadable: it names no connection, so only the platform secret can vouch for it
    named: list[ChannelConnection] = []
    ids = normalize.routing_ids(channel, body) if body is not None else set()
    for column in {column for column, _ in ids}:
        named += await channels.connections_by_account(reads, channel, {v for c, v in ids if c == column}, column)
    owned = _unambiguous(named)
    connections = list({c.id: c for c in owned.values()}.values())
    signed = _signed_by(request, channel, raw, header, connections)
    if len(signed) < len(connections):
        raise _forged()
    platform = channels.platform_secret(channel, services(request).settings.messaging)
    tolerance = services(request).settings.messaging.tiktok_signature_tolerance_seconds
    if not connections and (platform or body is None) and not (platform and signature_ok(channel, raw, header, platform, tolerance)):
        raise _forged()
    if body is None:
        normalize.load(raw)  # signed by the platform, yet unreadable: the 400 that says why
    return _route(normalize.parse(channel, body), owned, signed)


@router.post("/api/webhook/{channel}/{slug}")
async def receive_tenant_webhook(channel: str, slug: str, request: Request) -> Response:
    """Receive a tenant's platform events (signed); each is stored once and processed by a job."""
    return await _receive(request, _channel(channel), slug)


@router.post("/api/webhook/{channel}")
async def receive_shared_webhook(channel: str, request: Request) -> Response:
    """Receive events for every tenant of a platform, routed by the account ids in the payload."""
    return await _receive(request, _channel(channel), None)

"""Who a voice WebSocket acts for: the session token's organization (init's caller), or an
API key on /v1/realtime. Refusals become close codes (4401 for a bad token or key)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlalchemy import select
from starlette.websockets import WebSocket

from aibroker.errors import AuthenticationError, PermissionDenied
from aibroker.models import Organization, VoiceSession
from aibroker.tenancy.auth import ACTIVE_STATUSES, Principal, bearer_token
from aibroker.voice import repository, tokens

API_KEY_SUBPROTOCOL = "openai-insecure-api-key."  # browsers' way to send a key (Sec-WebSocket-Protocol)


def offered_subprotocols(ws: WebSocket) -> list[str]:
    raw = ws.headers.get("sec-websocket-protocol") or ""
    return [p.strip() for p in raw.split(",") if p.strip()]


def chosen_subprotocol(ws: WebSocket) -> str | None:
    """Echo `realtime` when the client offers it (as OpenAI does); never a credential."""
    return "realtime" if "realtime" in offered_subprotocols(ws) else None


def session_token(ws: WebSocket) -> str | None:
    return ws.query_params.get("token") or bearer_token(ws.headers.get("authorization"))


def api_key(ws: WebSocket) -> str | None:
    """`Authorization: Bearer`, else the browser subprotocol `openai-insecure-api-key.<key>`."""
    authorization = ws.headers.get("authorization")
    if authorization:
        return authorization
    for proto in offered_subprotocols(ws):
        if proto.startswith(API_KEY_SUBPROTOCOL):
            return "Bearer " + proto[len(API_KEY_SUBPROTOCOL):]
    return None


async def session_for_token(sessions: object, token: str | None, session_id: str, now: dt.datetime) -> VoiceSession:
    """The pending session this token opens, claimed for this connection. Raises
    AuthenticationError (4401) for an unknown / expired token, Conflict-like PermissionDenied
    codes for a session already connected or ended."""
    if not tokens.looks_like_token(token):
        raise AuthenticationError("A session token is required (?token= or Authorization: Bearer).", code="invalid_token")
    assert token is not None
    async with sessions() as session:  # type: ignore[operator]
        row = await repository.by_token(session, tokens.digest(token))
        if row is None or row.id != session_id:
            raise AuthenticationError("The session token is not valid for this session.", code="invalid_token")
        if row.status == repository.PENDING and row.token_expires_at is not None and row.token_expires_at <= now:
            raise AuthenticationError("The session token has expired; call init again.", code="token_expired")
        if row.status != repository.PENDING or not await repository.claim(session, row.organization_id, row.id, now):
            in_use = row.status == repository.ACTIVE
            raise PermissionDenied("This voice session is already connected." if in_use else "This voice session has ended.",
                                   code="session_in_use" if in_use else "session_ended", status_code=409)
        await session.commit()
        return row


async def principal_for_session(sessions: object, row: VoiceSession) -> Principal:
    """The organization's principal as init's caller had it (its key, its user)."""
    async with sessions() as session:  # type: ignore[operator]
        org = await session.scalar(select(Organization).where(Organization.id == row.organization_id))
    if org is None:
        raise AuthenticationError("The organization no longer exists.", code="invalid_token")
    if org.status not in ACTIVE_STATUSES:
        raise PermissionDenied(f"The organization is {org.status}.", code="organization_inactive")
    base = Principal(organization_id=org.id, organization_slug=org.slug, plan=org.plan, margin_bps=org.margin_bps,
                     timezone=org.timezone)
    return replace(base, api_key_id=row.api_key_id, user_id=row.user_id, via="voice_token")

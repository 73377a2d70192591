"""The voice routes: init (a session token for a browser), the session's WebSocket, OpenAI's
/v1/realtime on the same engine (API-key auth), and the sessions' history."""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.websockets import WebSocket

from aibroker.deps import db_session, require
from aibroker.errors import BrokerError, InvalidRequest, NotFound
from aibroker.gateway.context import CallContext
from aibroker.gateway.http import authenticate, services, validate
from aibroker.gateway.request_context import call_context
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.ops.body import read_body
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import Permission
from aibroker.voice import auth, repository
from aibroker.voice.engine import VoiceEngine
from aibroker.voice.protocol import SessionConfig
from aibroker.voice.schemas import SESSION_ID_PATTERN, VoiceInit, VoiceInitAnswer, VoiceSessionList, VoiceSessionView
from aibroker.voice.service import VOICE_FEATURE, VoiceService, refusal_close, status_of, view

router = APIRouter(tags=["Voice (seed 002)"])
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
MAX_PAGE = 100
MAX_OFFSET = 2**31 - 1


async def _json_or_empty(request: Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is {} (every init field is optional)."""
    raw = await read_body(request, services(request).settings.server.max_body_bytes)
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("The request body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return data


def _check_id(session_id: str) -> str:
    if not _SESSION_ID.match(session_id):
        raise InvalidRequest("A session id is 1-40 characters of letters, digits and _ . : -", param="sessionId")
    return session_id


@router.post("/api/voice/init/{sessionId}", status_code=201, response_model=VoiceInitAnswer)
async def init_session(sessionId: str, request: Request) -> dict[str, Any]:  # noqa: N803 - the seed's name
    """Open a voice session for the caller's organization and user: checks plan access (403),
    the concurrent-session limit (403 `concurrent_session_limit`), and that the wallet can hold
    the first metering increment (402 `insufficient_balance`). Answers the WebSocket URL and a
    short-lived token (`?token=` or `Authorization: Bearer`), so a browser needs no API key.
    An id already used in this organization: 409 `session_exists`."""
    _check_id(sessionId)
    principal = await authenticate(request)
    body = validate(VoiceInit, await _json_or_empty(request))
    ctx = call_context(request, principal, "voice", {"feature": body.feature}, fallback_feature=VOICE_FEATURE)
    ctx.request_id = sessionId
    svc = services(request)
    async with svc.db.sessions() as session:
        opened = await VoiceService(svc).open(session, ctx, body, sessionId, connected=False)
        await session.commit()
    scheme = "wss" if request.url.scheme in ("https", "wss") else "ws"
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return {"session_id": sessionId, "ws_url": f"{scheme}://{host}/api/voice/ws/{sessionId}?token={opened.token}",
            "token": opened.token, "expires_at": opened.row.token_expires_at, "model": opened.model.id}


@router.get("/api/voice/sessions", response_model=VoiceSessionList)
async def list_sessions(
    request: Request,
    who: Principal = Depends(require(Permission.USE_AI_BROKER)),
    session: AsyncSession = Depends(db_session, scope="function"),
    status: str | None = Query(default=None, max_length=20, description="Only sessions stored with this status."),
    limit: int = Query(default=20, ge=1, le=MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
) -> dict[str, Any]:
    """The organization's voice sessions, newest first (status, duration, tokens, cost,
    transcript). A user without VIEW_USAGE sees only their own."""
    rows = await repository.page(session, who.organization_id, user_id=_own(who), status=status, limit=limit + 1, offset=offset)
    now = utcnow()
    stale = VoiceService(services(request)).stale_before(now)
    return {"data": [view(r, status_of(r, stale, now)) for r in rows[:limit]], "has_more": len(rows) > limit}


@router.get("/api/voice/sessions/{session_id}", response_model=VoiceSessionView)
async def get_session(
    session_id: str, request: Request, who: Principal = Depends(require(Permission.USE_AI_BROKER)),
    session: AsyncSession = Depends(db_session, scope="function"),
) -> dict[str, Any]:
    """One voice session: status, duration_ms, input/output (and audio) tokens, cost_micros,
    transcript. Its usage records carry its id as `request_id`."""
    row = await repository.get(session, who.organization_id, session_id[:200])
    if row is None or (_own(who) is not None and row.user_id != who.user_id):
        raise NotFound(f"No voice session '{session_id[:200]}'.", param="session_id")
    now = utcnow()
    return view(row, status_of(row, VoiceService(services(request)).stale_before(now), now))


def _own(who: Principal) -> str | None:
    return None if who.can(Permission.VIEW_USAGE) or who.user_id is None else who.user_id


# -- WebSockets -----------------------------------------------------------------------------


async def _refuse(ws: WebSocket, exc: BrokerError) -> None:
    code, reason = refusal_close(exc)
    await ws.close(code, reason)


def _config(model_name: str, row: Any) -> SessionConfig:
    return SessionConfig(model=model_name, voice=row.voice, instructions=row.instructions, tools=list(row.tools or []),
                         language=row.language)


def _beta(ws: WebSocket) -> bool:
    return (ws.headers.get("openai-beta") or "").strip().lower() == "realtime=v1" or "openai-beta.realtime-v1" in auth.offered_subprotocols(ws)


@router.websocket("/api/voice/ws/{sessionId}")
async def voice_socket(ws: WebSocket, sessionId: str) -> None:  # noqa: N803 - the seed's name
    """The session's WebSocket (OpenAI Realtime events). Token as `?token=` or
    `Authorization: Bearer`; the first server event is `session.created`. Close codes: 4401 a
    bad or expired token, 4409 the session is already connected (or ended), 4402
    `insufficient_balance`, 4408 the session-length limit, 1011 an upstream failure."""
    svc = ws.app.state.services
    await ws.accept(subprotocol=auth.chosen_subprotocol(ws))
    row = None
    try:
        row = await auth.session_for_token(svc.db.sessions, auth.session_token(ws), sessionId, utcnow())
        principal = await auth.principal_for_session(svc.db.sessions, row)
        ctx = CallContext(request_id=row.id, principal=principal, endpoint="voice", feature=row.feature, user_id=row.user_id)
        await svc.gateway.load_byok(ctx)
        model = svc.catalog.resolve(row.model)
        ticket = await svc.gateway.admit(ctx, model, {"model": model.id})
    except BrokerError as exc:
        if row is not None:  # claimed, then refused: the session never ran
            await _mark_failed(svc, row.organization_id, row.id, exc)
        await _refuse(ws, exc)
        return
    _, max_seconds = VoiceService(svc).limits(principal.plan)
    engine = VoiceEngine(svc, ws, ctx=ctx, model=model, config=_config(model.name, row), beta=_beta(ws),
                         max_seconds=max_seconds, ticket=ticket)
    await engine.run()


async def _mark_failed(svc: Any, organization_id: str, session_id: str, exc: BrokerError) -> None:
    code, reason = refusal_close(exc)
    async with svc.db.sessions() as session:
        await repository.save_progress(session, organization_id, session_id, {
            "status": repository.FAILED, "ended_at": utcnow(), "close_code": code, "close_reason": reason})
        await session.commit()


@router.websocket("/v1/realtime")
async def realtime_socket(ws: WebSocket) -> None:
    """OpenAI's Realtime endpoint on the voice engine: `?model=` (a realtime model), API key as
    `Authorization: Bearer` (or the `openai-insecure-api-key.<key>` subprotocol). The official
    OpenAI realtime clients work unchanged. Same close codes as the session socket."""
    svc = ws.app.state.services
    await ws.accept(subprotocol=auth.chosen_subprotocol(ws))
    voice = VoiceService(svc)
    try:
        principal = await svc.auth.authenticate(auth.api_key(ws))
        principal.require(Permission.USE_AI_BROKER)
        session_id = new_id("rt")
        ctx = CallContext(request_id=session_id, principal=principal, endpoint="voice", feature=VOICE_FEATURE,
                          user_id=principal.user_id)
        body = validate(VoiceInit, {"model": ws.query_params.get("model") or None})
        async with svc.db.sessions() as session:
            opened = await voice.open(session, ctx, body, session_id, connected=True)
            await session.commit()
    except BrokerError as exc:
        await _refuse(ws, exc)
        return
    try:
        ticket = await svc.gateway.admit(ctx, opened.model, {"model": opened.model.id})
    except BrokerError as exc:  # a rate limit: the session never ran
        await _mark_failed(svc, principal.organization_id, session_id, exc)
        await _refuse(ws, exc)
        return
    _, max_seconds = voice.limits(principal.plan)
    engine = VoiceEngine(svc, ws, ctx=ctx, model=opened.model, config=_config(opened.model.name, opened.row), beta=_beta(ws),
                         max_seconds=max_seconds, ticket=ticket)
    await engine.run()

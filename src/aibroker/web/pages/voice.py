"""/console/voice: a voice test call from the browser. The console opens the session for the
signed-in member (VoiceService.open, as POST /api/voice/init does: plan, concurrency and
wallet checks) and hands the page only the session's short-lived token; the page streams the
microphone to the session's WebSocket (/api/voice/ws/{id}) and shows transcripts and events.
No API key ever reaches the browser. Any member (USE_AI_BROKER)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from aibroker.catalog.registry import REALTIME
from aibroker.deps import db_session
from aibroker.errors import InvalidRequest
from aibroker.gateway.http import JSONResponse, services, validate
from aibroker.gateway.request_context import call_context
from aibroker.kit.ids import new_id
from aibroker.ops.body import read_body
from aibroker.tenancy.roles import Permission
from aibroker.voice import endpoints as voice_api
from aibroker.voice.schemas import VoiceInit
from aibroker.voice.service import VOICE_FEATURE, VoiceService
from aibroker.web.auth import ConsoleUser, action, page
from aibroker.web.nav import NavEntry
from aibroker.web.pages.ai_caller import models_of_kind, principal_of
from aibroker.web.render import render

router = APIRouter()
NAV = [NavEntry("Voice call", "/console/voice", Permission.USE_AI_BROKER)]
API = "/console/api/voice/sessions"
RECENT = 10
_session = Depends(db_session, scope="function")
_use_page = page(Permission.USE_AI_BROKER)


@router.get("/console/voice")
async def voice_page(request: Request, user: ConsoleUser = Depends(_use_page), session: AsyncSession = _session) -> Response:
    """The test call, and the recent voice sessions (the member's own without VIEW_USAGE)."""
    recent = await voice_api.list_sessions(request, principal_of(user), session, status=None, limit=RECENT, offset=0)
    return render(request, "voice.html", title="Voice test call", api=API, models=models_of_kind(request, REALTIME),
                  default_model=services(request).settings.voice.default_model, sessions=recent["data"])


@router.post(API)
async def open_call(request: Request, user: ConsoleUser = Depends(action(Permission.USE_AI_BROKER))) -> Response:
    """Open a voice session for the member (`{"model"?, "voice"?, "instructions"?}`): answers
    its id, the WebSocket path with the session token (single use, short-lived) and the model.
    402 / 403 as init (balance, plan, concurrent sessions)."""
    raw = await read_body(request, services(request).settings.server.max_body_bytes)
    body = validate(VoiceInit, _object(raw))
    who = principal_of(user)
    session_id = new_id("call")
    ctx = call_context(request, who, "voice", {"feature": body.feature}, fallback_feature=VOICE_FEATURE)
    ctx.request_id = session_id  # the session's usage records carry its id, as with init
    svc = services(request)
    async with svc.db.sessions() as session:
        opened = await VoiceService(svc).open(session, ctx, body, session_id, connected=False)
        await session.commit()
    return JSONResponse({"session_id": session_id, "ws_path": f"/api/voice/ws/{session_id}?token={opened.token}",
                         "expires_at": opened.row.token_expires_at.isoformat(), "model": opened.model.id}, status_code=201)


def _object(raw: bytes) -> dict[str, Any]:
    """The JSON body as an object; empty is {} (every field is optional); nulls are dropped."""
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return {k: v for k, v in data.items() if v is not None}


@router.get(API + "/{session_id}")
async def call_state(session_id: str, request: Request, user: ConsoleUser = Depends(_use_page),
                     session: AsyncSession = _session) -> Response:
    """One voice session: status, duration, tokens, cost and transcript (another's: 404)."""
    found = await voice_api.get_session(session_id[:200], request, principal_of(user), session)
    return JSONResponse(found)

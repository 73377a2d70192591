"""AI conversations (seed 001's AiConversation): /api/ai/conversations.

A conversation belongs to one user of one organization (an API key without a user is its
own owner): another user's or organization's is a 404. Each turn goes through the gateway
as the tenant (feature `ai_conversation` unless `x-aibroker-feature` names another), so it
is routed, admitted, held, billed and recorded like any request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aibroker.ai import conversations_service as service
from aibroker.ai.conversations_history import DEFAULT_CONTEXT, fit_history
from aibroker.ai.schemas import ConversationCreate, ConversationMessage, ConversationUpdate
from aibroker.catalog.registry import CHAT
from aibroker.deps import db_session, require
from aibroker.errors import BrokerError, InvalidRequest
from aibroker.gateway.http import JSONResponse, cache_noted, services, unless_disconnected
from aibroker.gateway.request_context import call_context
from aibroker.gateway.streaming import collect_text
from aibroker.gateway.validation import capped_output
from aibroker.kit.clock import utcnow
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import Permission

router = APIRouter(prefix="/api/ai/conversations", tags=["AI workspace: conversations"])
FEATURE = "ai_conversation"
MAX_OFFSET = 2**31 - 1
_use = require(Permission.USE_AI_BROKER)
_session = Depends(db_session, scope="function")


def _chat_model(request: Request, model: str | None) -> str | None:
    """The catalog id of a conversation's model (400 for an unknown or non-chat model)."""
    if model is None or model in ("auto", "aibroker/auto"):
        return None
    entry = services(request).catalog.resolve(model)
    if entry.kind != CHAT:
        raise InvalidRequest(f"The model '{entry.id}' is not a chat model.", param="model", code="not_a_chat_model")
    return entry.id


@router.get("")
async def list_conversations(
    limit: int = Query(default=50, ge=1, le=200, description="Page size."),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET, description="Conversations to skip."),
    who: Principal = Depends(_use), session: AsyncSession = _session,
) -> dict[str, Any]:
    """The caller's conversations, most recently active first (without their messages)."""
    rows = await service.list_for(session, who, limit=limit, offset=offset)
    return {"object": "list", "data": [service.conversation_view(r) for r in rows]}


@router.post("", status_code=201)
async def create_conversation(body: ConversationCreate, request: Request, who: Principal = Depends(_use),
                              session: AsyncSession = _session) -> dict[str, Any]:
    """Start a conversation. Without `title`, the first message names it."""
    row = service.create(session, who, model=_chat_model(request, body.model), title=body.title, system_prompt=body.system_prompt)
    return {**service.conversation_view(row), "messages": []}


@router.get("/{conversation_id}")
async def get_conversation(conversation_id: str, who: Principal = Depends(_use), session: AsyncSession = _session) -> dict[str, Any]:
    """One conversation with its `messages`, oldest first."""
    row = await service.get(session, who, conversation_id)
    return {**service.conversation_view(row), "messages": [service.message_view(m) for m in await service.messages(session, row.id)]}


@router.patch("/{conversation_id}")
async def update_conversation(conversation_id: str, body: ConversationUpdate, request: Request, who: Principal = Depends(_use),
                              session: AsyncSession = _session) -> dict[str, Any]:
    """Rename it, or change the model or system prompt of the next turns."""
    row = await service.get(session, who, conversation_id)
    fields = body.model_fields_set
    if "title" in fields and body.title is not None:
        row.title = body.title
    if "model" in fields:
        row.model = _chat_model(request, body.model)
    if "system_prompt" in fields:
        row.system_prompt = body.system_prompt
    row.updated_at = utcnow()
    return service.conversation_view(row)


@router.delete("/{conversation_id}", status_code=204)
async def delete_conversation(conversation_id: str, who: Principal = Depends(_use), session: AsyncSession = _session) -> None:
    """Delete a conversation and its messages (its usage records and charges stay)."""
    await session.delete(await service.get(session, who, conversation_id))


async def _prepare(request: Request, who: Principal, conversation_id: str, turn: ConversationMessage) -> dict[str, Any]:
    """The chat body of this turn: the stored history fitted to the model's context."""
    svc = services(request)
    async with svc.db.sessions() as session:
        row = await service.get(session, who, conversation_id)
        history = [(m.role, m.content) for m in await service.messages(session, row.id)]
    entry = svc.catalog.resolve(row.model or svc.gateway.default_model())
    body: dict[str, Any] = {"model": row.model or "auto"}
    if turn.max_tokens is not None:
        body["max_tokens"] = turn.max_tokens
    if turn.temperature is not None:
        body["temperature"] = turn.temperature
    reserve = capped_output(entry, body, svc.settings.gateway.default_max_tokens)
    body["messages"] = fit_history(row.system_prompt, history, turn.content,
                                   context_length=entry.context_length or DEFAULT_CONTEXT, reserve=reserve)
    return body


async def _store(request: Request, who: Principal, conversation_id: str, content: str, reply: service.Reply) -> dict[str, Any]:
    async with services(request).db.sessions() as session:
        message = await service.record_turn(session, who, conversation_id, content, reply)
        await session.commit()
    return {**service.message_view(message), "conversation_id": conversation_id}


@router.post("/{conversation_id}/messages")
async def post_message(conversation_id: str, turn: ConversationMessage, request: Request, who: Principal = Depends(_use)) -> Response:
    """Add the user's message and answer it: the assistant message with `content`,
    `cost_micros` and `request_id`. With `stream: true`, Server-Sent Events: `delta`
    events (`{"content"}`), then one `message` event with the stored assistant message
    (an `error` event if the model fails midway). The user turn and the answer are stored
    together once the answer is complete; a client that leaves mid-answer stores neither
    (what was generated is billed and recorded in the usage records under its request id)."""
    body = await _prepare(request, who, conversation_id, turn)
    ctx = call_context(request, who, "chat", {}, fallback_feature=FEATURE)
    gateway = services(request).gateway
    if not turn.stream:
        answer = await unless_disconnected(request, gateway.chat(ctx, body), ctx)
        choice = (answer.body.get("choices") or [{}])[0]
        reply = service.Reply((choice.get("message") or {}).get("content") or "", answer.model.id, ctx.request_id,
                              answer.cost.billed_micros, answer.usage.input_tokens, answer.usage.output_tokens)
        return JSONResponse(await _store(request, who, conversation_id, turn.content, reply), headers=answer.headers(ctx.request_id))
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    stream = await cache_noted(ctx, gateway.chat_stream(ctx, body))

    async def events() -> AsyncIterator[bytes]:
        pieces: list[str] = []
        cost, usage = 0, {}
        try:
            async for chunk in stream.chunks:
                before = len(pieces)
                collect_text(chunk, pieces)
                for piece in pieces[before:]:
                    yield _event("delta", {"content": piece})
                if chunk.get("aibroker"):
                    cost = int(chunk["aibroker"].get("cost_micros") or 0)
                    usage = chunk.get("usage") or {}
            reply = service.Reply("".join(pieces), stream.model.id, ctx.request_id, cost,
                                  int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
            yield _event("message", await _store(request, who, conversation_id, turn.content, reply))
        except BrokerError as exc:
            yield _event("error", exc.body())

    headers = {"x-request-id": ctx.request_id, "x-aibroker-model": stream.model.id, **stream.headers}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

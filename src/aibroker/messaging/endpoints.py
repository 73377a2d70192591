"""The tenant's messaging API: channels, AI context, leads, conversations. Everything is
scoped to the caller's organization (another tenant's ids answer 404)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.deps import db_session, require
from aibroker.messaging import agent, channels, conversations, leads
from aibroker.messaging import context as ai_context
from aibroker.messaging.leads import lead_view
from aibroker.messaging.schemas import (
    AgentMessage,
    AIContextUpdate,
    ChannelCreate,
    ChannelUpdate,
    ConversationUpdate,
    Handoff,
)
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import Permission

router = APIRouter(tags=["Messaging (seed 004)"])
# OFFSET is a 64-bit integer on SQLite and PostgreSQL; pages beyond this are empty anyway.
MAX_OFFSET = 2**31 - 1


@router.post("/api/channels", status_code=201)
async def create_channel(body: ChannelCreate, request: Request, who: Principal = Depends(require(Permission.MANAGE_CHANNELS)), session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Connect a WhatsApp number, Facebook page, Instagram account or TikTok account. Secrets are sealed.
    `app_secret` may be left out when the platform's (META_APP_SECRET / TIKTOK_CLIENT_SECRET) is set.
    An account id already connected, in any organization: 409 `account_id_taken`."""
    row = await channels.create_connection(
        session, organization_id=who.organization_id, channel=body.channel, credentials=body.credentials,
        verify_token=body.verify_token, app_secret=body.app_secret, ai_enabled=body.ai_enabled,
        branch=body.branch, options=body.options,
        platform_secret=channels.platform_secret(body.channel, request.app.state.services.settings.messaging),
    )
    view = channels.connection_view(row)
    view["webhook_path"] = channels.webhook_path(row.channel, who.organization_slug)
    return view


@router.get("/api/channels")
async def list_channels(who: Principal = Depends(require(Permission.MANAGE_CHANNELS)), session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """The organization's channel connections (never their tokens or secrets)."""
    return {"data": [channels.connection_view(r) for r in await channels.list_connections(session, who.organization_id)]}


@router.patch("/api/channels/{connection_id}")
async def update_channel(connection_id: str, body: ChannelUpdate, who: Principal = Depends(require(Permission.MANAGE_CHANNELS)),
                         session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Turn the AI on or off for a channel, or change its options."""
    row = await channels.get_connection(session, who.organization_id, connection_id)
    channels.update_connection(row, ai_enabled=body.ai_enabled, options=body.options)
    return channels.connection_view(row)


@router.delete("/api/channels/{connection_id}", status_code=204)
async def delete_channel(connection_id: str, who: Principal = Depends(require(Permission.MANAGE_CHANNELS)), session: AsyncSession = Depends(db_session, scope="function")) -> None:
    """Disconnect a channel (its leads and conversations stay)."""
    row = await channels.get_connection(session, who.organization_id, connection_id)
    await session.delete(row)


@router.get("/api/ai/context")
async def get_ai_context(who: Principal = Depends(require(Permission.MANAGE_CHANNELS)), session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """The auto-responder's settings (defaults when never configured: `configured` is false)."""
    return (await ai_context.load(session, who.organization_id)).view()


@router.put("/api/ai/context")
async def put_ai_context(body: AIContextUpdate, who: Principal = Depends(require(Permission.MANAGE_CHANNELS)), session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Set the auto-responder's settings; fields left out keep their value."""
    values = body.model_dump(exclude_unset=True)
    if "business_hours" in values and body.business_hours is not None:
        values["business_hours"] = body.business_hours.model_dump()
    return (await ai_context.save(session, who.organization_id, values)).view()


@router.get("/api/leads")
async def list_leads(
    classification: str | None = Query(default=None, description="HOT | WARM | COLD"),
    channel: str | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=500), offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
    who: Principal = Depends(require(Permission.MANAGE_CHANNELS)), session: AsyncSession = Depends(db_session, scope="function"),
) -> dict[str, Any]:
    """The organization's leads, highest score first."""
    rows = await leads.list_scoped(session, who.organization_id, classification=classification, channel=channel, limit=limit, offset=offset)
    return {"data": [lead_view(r) for r in rows]}


@router.get("/api/leads/{lead_id}")
async def get_lead(lead_id: str, who: Principal = Depends(require(Permission.MANAGE_CHANNELS)), session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """One lead, with the history of its score (every change and its reason)."""
    lead = await leads.get_scoped(session, who.organization_id, lead_id)
    view = lead_view(lead)
    view["score_events"] = await leads.score_history(session, lead.id)
    return view


@router.get("/api/conversations")
async def list_conversations(
    status: str | None = Query(default=None, description="active | pending | resolved | closed"),
    handled_by: str | None = Query(default=None, description="ai | human"),
    lead_id: str | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=500), offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
    who: Principal = Depends(require(Permission.MANAGE_CHANNELS)), session: AsyncSession = Depends(db_session, scope="function"),
) -> dict[str, Any]:
    """The organization's conversations, most recent activity first."""
    rows = await conversations.list_scoped(session, who.organization_id, status=status, handled_by=handled_by, lead_id=lead_id,
                                           limit=limit, offset=offset)
    return {"data": [conversations.conversation_view(c) for c in rows]}


@router.get("/api/conversations/{conversation_id}/messages")
async def list_messages(conversation_id: str, limit: int = Query(default=200, ge=1, le=1000),
                        who: Principal = Depends(require(Permission.MANAGE_CHANNELS)), session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """A conversation's messages, oldest first, with each outbound message's delivery status."""
    conversation = await conversations.get_scoped(session, who.organization_id, conversation_id)
    rows = await conversations.history(session, conversation.id, limit)
    return {"conversation": conversations.conversation_view(conversation), "data": [conversations.message_view(m) for m in rows]}


@router.post("/api/conversations/{conversation_id}/messages", status_code=202)
async def agent_reply(conversation_id: str, body: AgentMessage, who: Principal = Depends(require(Permission.MANAGE_CHANNELS)),
                      session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """A human agent's reply: queued for sending; the agent takes the conversation (the AI stops)."""
    message = await agent.reply(session, who.organization_id, conversation_id, body.content, who.user_id or who.api_key_id)
    return conversations.message_view(message)


@router.post("/api/conversations/{conversation_id}/handoff")
async def handoff(conversation_id: str, body: Handoff, who: Principal = Depends(require(Permission.MANAGE_CHANNELS)),
                  session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Hand the conversation to a human (the AI stops replying) or back to the AI."""
    conversation = await conversations.get_scoped(session, who.organization_id, conversation_id)
    conversations.hand_to(session, conversation, body.to)
    return conversations.conversation_view(conversation)


@router.patch("/api/conversations/{conversation_id}")
async def update_conversation(conversation_id: str, body: ConversationUpdate, who: Principal = Depends(require(Permission.MANAGE_CHANNELS)),
                              session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Change the conversation's state (resolved / closed end it; the lead's next message opens a new one)."""
    conversation = await conversations.get_scoped(session, who.organization_id, conversation_id)
    conversations.set_status(conversation, body.status)
    return conversations.conversation_view(conversation)

"""Conversations and their messages: open threads, status that only moves forward, handoff."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import InvalidRequest, NotFound
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Conversation, Event, Lead, Message

OPEN = ("active", "pending")
STATES = ("active", "pending", "resolved", "closed")
# Outbound delivery states in order; a late receipt never moves a message back.
# A receipt moves a message forward only, so the final status does not depend on the order
# receipts are processed in. "failed" sits between sent and delivered: a later delivered
# or read receipt proves the message got through.
RANK = {"queued": 0, "sending": 0, "sent": 10, "failed": 15, "delivered": 20, "read": 30}


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def from_timestamp(seconds: float | None) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else utcnow()


async def open_conversation(
    session: AsyncSession, *, lead: Lead, connection_id: str, channel: str, branch: str | None, thread_id: str | None
) -> Conversation:
    conversation = await session.scalar(
        select(Conversation)
        .where(Conversation.organization_id == lead.organization_id, Conversation.lead_id == lead.id,
               Conversation.channel == channel, Conversation.status.in_(OPEN))
        .order_by(Conversation.created_at.desc())
        .limit(1)
    )
    if conversation is None:
        conversation = Conversation(
            id=new_id("conv"), organization_id=lead.organization_id, branch=branch, lead_id=lead.id,
            connection_id=connection_id, channel=channel, status="active", handled_by="ai",
            ai_messages_since_handoff=0, updated_at=utcnow(),
        )
        session.add(conversation)
    if thread_id:
        conversation.external_thread_id = thread_id
    await session.flush()
    return conversation


def add_message(
    session: AsyncSession, conversation: Conversation, *, direction: str, author: str, content: str, status: str,
    external_id: str | None = None, request_id: str | None = None, cost_micros: int = 0,
    details: dict[str, Any] | None = None, at: dt.datetime | None = None,
) -> Message:
    now = at or utcnow()
    message = Message(
        id=new_id("msg"), organization_id=conversation.organization_id, conversation_id=conversation.id,
        channel=conversation.channel, direction=direction, author=author, content=content, status=status,
        external_id=external_id, request_id=request_id, cost_micros=cost_micros, details=details or {}, created_at=now,
    )
    session.add(message)
    conversation.last_message_at = now
    conversation.updated_at = utcnow()
    return message


def advance(message: Message, status: str, at: dt.datetime, error: Any = None) -> bool:
    """Move an outbound message's status forward only (read implies delivered)."""
    current = RANK.get(message.status)
    target = RANK.get(status)
    if current is None or target is None or target <= current:  # inbound / blocked, or not forward
        return False
    message.status = status
    if status == "failed":
        message.error = str(error)[:2000] if error else "the platform reported failure"
        return True
    if target >= RANK["delivered"] and message.delivered_at is None:
        message.delivered_at = at
    if target >= RANK["read"]:
        message.read_at = at
    return True


def emit(session: AsyncSession, organization_id: str, type: str, payload: dict[str, Any]) -> None:
    """An event for the tenant (delivered by the notifications package)."""
    session.add(Event(id=new_id("evt"), organization_id=organization_id, type=type, payload=payload, delivery_attempts=0))


def escalate(session: AsyncSession, conversation: Conversation, reason: str) -> None:
    """Hand the conversation to a human: the AI stops replying until it is handed back."""
    now = utcnow()
    conversation.handled_by, conversation.status = "human", "pending"
    conversation.escalated_at, conversation.escalation_reason, conversation.updated_at = now, reason, now
    emit(session, conversation.organization_id, "conversation.escalated", {
        "conversation_id": conversation.id, "lead_id": conversation.lead_id, "channel": conversation.channel, "reason": reason,
    })


def hand_to(session: AsyncSession, conversation: Conversation, to: str) -> None:
    if to == "human":
        escalate(session, conversation, "handed to a human by an agent")
    elif to == "ai":
        conversation.handled_by, conversation.status = "ai", "active"
        conversation.ai_messages_since_handoff = 0
        conversation.updated_at = utcnow()
    else:
        raise InvalidRequest("'to' must be 'ai' or 'human'.", param="to")


async def get_scoped(session: AsyncSession, organization_id: str, conversation_id: str) -> Conversation:
    conversation = await session.scalar(
        select(Conversation).where(Conversation.id == conversation_id, Conversation.organization_id == organization_id)
    )
    if conversation is None:
        raise NotFound(f"No conversation '{conversation_id}'.", param="id")
    return conversation


async def list_scoped(
    session: AsyncSession, organization_id: str, *, status: str | None = None, handled_by: str | None = None,
    lead_id: str | None = None, limit: int = 50, offset: int = 0,
) -> list[Conversation]:
    """The organization's conversations, most recent activity first."""
    stmt = select(Conversation).where(Conversation.organization_id == organization_id)
    for column, value in ((Conversation.status, status), (Conversation.handled_by, handled_by), (Conversation.lead_id, lead_id)):
        if value:
            stmt = stmt.where(column == value)
    stmt = stmt.order_by(Conversation.last_message_at.desc(), Conversation.created_at.desc()).limit(limit).offset(offset)
    return list(await session.scalars(stmt))


def set_status(conversation: Conversation, status: str) -> None:
    """resolved / closed end the conversation (the lead's next message opens a new one)."""
    if status not in STATES:
        raise InvalidRequest(f"status must be one of {', '.join(STATES)}.", param="status")
    conversation.status, conversation.updated_at = status, utcnow()
    if status in ("resolved", "closed"):
        conversation.ai_messages_since_handoff = 0


async def history(session: AsyncSession, conversation_id: str, limit: int = 50) -> list[Message]:
    rows = await session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)
    )
    return list(reversed(list(rows)))


async def mark_outbound(
    session: AsyncSession, organization_id: str, conversation_ids: list[str], status: str, at: dt.datetime,
    *, up_to: dt.datetime | None = None,
) -> int:
    """Watermark receipts: every outbound message sent at or before `up_to` moves forward."""
    stmt = select(Message).where(
        Message.organization_id == organization_id, Message.conversation_id.in_(conversation_ids),
        Message.direction == "outbound", Message.status.in_(("sent", "delivered")),
    )
    changed = 0
    for message in await session.scalars(stmt.order_by(Message.id).with_for_update()):  # see tasks._receipt
        if up_to is not None and (aware(message.sent_at) or at) > up_to:
            continue
        changed += advance(message, status, at)
    return changed


def conversation_view(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id, "lead_id": c.lead_id, "channel": c.channel, "branch": c.branch, "status": c.status,
        "handled_by": c.handled_by, "ai_messages_since_handoff": c.ai_messages_since_handoff,
        "last_inbound_at": c.last_inbound_at, "last_message_at": c.last_message_at,
        "escalated_at": c.escalated_at, "escalation_reason": c.escalation_reason, "created_at": c.created_at,
    }


def message_view(m: Message) -> dict[str, Any]:
    return {
        "id": m.id, "conversation_id": m.conversation_id, "direction": m.direction, "author": m.author,
        "content": m.content, "status": m.status, "external_id": m.external_id, "error": m.error,
        "request_id": m.request_id, "cost_micros": m.cost_micros, "details": m.details, "created_at": m.created_at,
        "sent_at": m.sent_at, "delivered_at": m.delivered_at, "read_at": m.read_at,
    }

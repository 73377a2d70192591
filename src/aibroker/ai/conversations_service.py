"""AI conversations: every query is scoped to the caller's organization AND owner (a user,
else the API key): another user's conversation is a 404, like another organization's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai.conversations_history import title_from
from aibroker.ai.scope import owner_of
from aibroker.errors import NotFound
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import AiConversation, AiConversationMessage
from aibroker.tenancy.auth import Principal


def conversation_view(row: AiConversation) -> dict[str, Any]:
    return {
        "id": row.id, "object": "ai_conversation", "title": row.title, "model": row.model,
        "system_prompt": row.system_prompt, "message_count": row.message_count, "cost_micros": row.cost_micros,
        "created_at": row.created_at, "updated_at": row.updated_at,
    }


def message_view(row: AiConversationMessage) -> dict[str, Any]:
    view: dict[str, Any] = {"id": row.id, "role": row.role, "content": row.content, "created_at": row.created_at}
    if row.role == "assistant":
        view.update(model=row.model, request_id=row.request_id, cost_micros=row.cost_micros,
                    usage={"input_tokens": row.input_tokens, "output_tokens": row.output_tokens})
    return view


def _mine(principal: Principal) -> tuple[Any, ...]:
    return (AiConversation.organization_id == principal.organization_id, AiConversation.owner_id == owner_of(principal))


async def get(session: AsyncSession, principal: Principal, conversation_id: str) -> AiConversation:
    row = await session.scalar(select(AiConversation).where(AiConversation.id == conversation_id, *_mine(principal)))
    if row is None:
        raise NotFound(f"No conversation '{conversation_id}'.", param="id", code="conversation_not_found")
    return row


async def list_for(session: AsyncSession, principal: Principal, *, limit: int, offset: int) -> list[AiConversation]:
    query = select(AiConversation).where(*_mine(principal))
    query = query.order_by(AiConversation.updated_at.desc(), AiConversation.id.desc()).limit(limit).offset(offset)
    return list((await session.scalars(query)).all())


async def messages(session: AsyncSession, conversation_id: str) -> list[AiConversationMessage]:
    query = select(AiConversationMessage).where(AiConversationMessage.conversation_id == conversation_id)
    return list((await session.scalars(query.order_by(AiConversationMessage.seq))).all())


def create(session: AsyncSession, principal: Principal, *, model: str | None, title: str | None, system_prompt: str | None) -> AiConversation:
    now = utcnow()
    row = AiConversation(
        id=new_id("conv"), organization_id=principal.organization_id, owner_id=owner_of(principal), title=title,
        model=model, system_prompt=system_prompt, message_count=0, cost_micros=0, created_at=now, updated_at=now,
    )
    session.add(row)
    return row


@dataclass(slots=True)
class Reply:
    content: str
    model: str
    request_id: str
    cost_micros: int
    input_tokens: int
    output_tokens: int


async def record_turn(session: AsyncSession, principal: Principal, conversation_id: str, user_text: str, reply: Reply) -> AiConversationMessage:
    """Store the user turn and its answer together (never one without the other). The two
    sequence numbers come from one atomic UPDATE, so concurrent turns never collide."""
    now = utcnow()
    count = await session.scalar(
        update(AiConversation).where(AiConversation.id == conversation_id, *_mine(principal))
        .values(message_count=AiConversation.message_count + 2, cost_micros=AiConversation.cost_micros + reply.cost_micros,
                updated_at=now)
        .returning(AiConversation.message_count)
    )
    if count is None:  # deleted while the model was answering: the call is billed and recorded all the same
        raise NotFound(f"The conversation '{conversation_id}' was deleted while the model answered.",
                       param="id", code="conversation_not_found", extra={"request_id": reply.request_id})
    user = AiConversationMessage(id=new_id("cmsg"), conversation_id=conversation_id, seq=count - 1, role="user",
                                 content=user_text, cost_micros=0, input_tokens=0, output_tokens=0, created_at=now)
    assistant = AiConversationMessage(
        id=new_id("cmsg"), conversation_id=conversation_id, seq=count, role="assistant", content=reply.content,
        model=reply.model, request_id=reply.request_id, cost_micros=reply.cost_micros, input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens, created_at=now,
    )
    session.add_all([user, assistant])
    if count == 2:  # the first turn names an untitled conversation
        await session.execute(update(AiConversation).where(AiConversation.id == conversation_id, AiConversation.title.is_(None))
                              .values(title=title_from(user_text)))
    return assistant

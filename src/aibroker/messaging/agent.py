"""What a human agent does in a conversation (the JSON API and the console inbox share it)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import InvalidRequest
from aibroker.jobs import enqueue
from aibroker.messaging import conversations
from aibroker.messaging.responder import SEND_JOB
from aibroker.models import Message


async def reply(session: AsyncSession, organization_id: str, conversation_id: str, content: str, agent: str | None) -> Message:
    """Queue a human agent's reply for sending on the conversation's channel; the agent takes
    the conversation (the AI stops). 404 for another organization's conversation."""
    conversation = await conversations.get_scoped(session, organization_id, conversation_id)
    if conversation.status == "closed":
        raise InvalidRequest("The conversation is closed.", code="conversation_closed")
    if conversation.handled_by != "human":
        conversation.handled_by = "human"
    conversation.status = "active"
    message = conversations.add_message(session, conversation, direction="outbound", author="human",
                                        content=content, status="queued", details={"agent": agent})
    await session.flush()
    await enqueue(session, SEND_JOB.format(channel=conversation.channel), {"message_id": message.id},
                  organization_id=organization_id, priority=20)
    return message

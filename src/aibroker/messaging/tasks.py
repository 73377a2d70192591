"""Job handlers of the messaging domain.

    messaging.process_event    one stored webhook event: lead, conversation, message; or a receipt
    messaging.ai_response      seed 004's `ai_response`: score, decide, reply through the gateway
    messaging.send_whatsapp    seed 004's `send_whatsapp` (and send_instagram / send_facebook /
    messaging.send_...         send_tiktok): channel rules, then the platform's send API
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.jobs import JobContext, enqueue, register
from aibroker.jobs.database import write_sessions
from aibroker.kit.clock import utcnow
from aibroker.messaging import conversations, enrich, leads, rules, senders
from aibroker.messaging.channels import CHANNELS, open_connection
from aibroker.messaging.conversations import aware, from_timestamp
from aibroker.messaging.normalize import MESSAGE
from aibroker.messaging.responder import respond
from aibroker.models import ChannelConnection, Conversation, Lead, Message, WebhookEvent

AI_RESPONSE = "messaging.ai_response"


@register("messaging.process_event")
async def process_event(job: JobContext) -> dict[str, Any]:
    session = job.session
    event = await session.get(WebhookEvent, job.payload["event_id"])
    if event is None or event.processed_at is not None:
        return {"skipped": "already processed"}
    connection = await session.get(ChannelConnection, event.connection_id)
    data = event.payload["data"]
    event.processed_at = utcnow()
    if connection is None:
        return {"skipped": "connection removed"}
    if event.kind == MESSAGE:
        return await _inbound_message(session, event, connection, data, enrich_leads=job.services.settings.guard.enrich_leads)
    return await _receipt(session, event, data)


async def _inbound_message(
    session: AsyncSession, event: WebhookEvent, connection: ChannelConnection, data: dict[str, Any], *, enrich_leads: bool = True
) -> dict[str, Any]:
    lead = await leads.find_or_create(session, organization_id=connection.organization_id, channel=event.channel,
                                      data=data, branch=connection.branch)
    conversation = await conversations.open_conversation(
        session, lead=lead, connection_id=connection.id, channel=event.channel, branch=connection.branch,
        thread_id=data.get("thread_id"),
    )
    at = from_timestamp(data.get("timestamp"))
    for row in (lead, conversation):  # receipts can arrive out of order: keep the latest
        if aware(row.last_inbound_at) is None or aware(row.last_inbound_at) < at:
            row.last_inbound_at = at
    message = conversations.add_message(
        session, conversation, direction="inbound", author="lead", content=data.get("text") or "", status="received",
        external_id=event.external_id, details={"type": data.get("type"), "platform_time": at.isoformat()},
    )  # created_at is our receive time: it orders the thread (platform times have whole seconds)
    await session.flush()
    if connection.ai_enabled:
        await enqueue(session, AI_RESPONSE, {"message_id": message.id}, organization_id=connection.organization_id, priority=5)
    await enrich.enqueue_enrichment(session, lead, connection, enabled=enrich_leads)  # its own job: the reply never waits
    return {"lead_id": lead.id, "conversation_id": conversation.id, "message_id": message.id}


async def _receipt(session: AsyncSession, event: WebhookEvent, data: dict[str, Any]) -> dict[str, Any]:
    status, at, org = data.get("status"), from_timestamp(data.get("timestamp")), event.organization_id
    if status == "played":
        status = "read"
    mids = [data["message_external_id"]] if data.get("message_external_id") else list(data.get("mids") or [])
    changed = 0
    if mids:
        # Locked: concurrent receipts for one message (read, delivered ...) must not race
        # each other back to an earlier status.
        rows = await session.scalars(select(Message).where(
            Message.organization_id == org, Message.channel == event.channel, Message.external_id.in_(mids),
        ).order_by(Message.id).with_for_update())
        for message in rows:
            changed += conversations.advance(message, status, at, data.get("errors"))
    elif data.get("watermark") or data.get("thread_id"):
        stmt = select(Conversation.id).where(Conversation.organization_id == org, Conversation.channel == event.channel)
        if data.get("thread_id"):
            stmt = stmt.where(Conversation.external_thread_id == data["thread_id"])
        else:
            stmt = stmt.join(Lead, Lead.id == Conversation.lead_id).where(Lead.external_user_id == str(data.get("user_id")))
        ids = list(await session.scalars(stmt))
        up_to = from_timestamp(data["watermark"]) if data.get("watermark") else None
        if ids:
            changed = await conversations.mark_outbound(session, org, ids, status, at, up_to=up_to)
    return {"status": status, "changed": changed}


register(AI_RESPONSE)(respond)


async def _mark_failed(session: AsyncSession, payload: dict[str, Any], error: str) -> None:
    """A send that will never succeed: the message shows why (an admin may retry the job)."""
    message = await session.get(Message, payload.get("message_id"))
    if message is not None and message.status in ("queued", "sending"):
        message.status, message.error = "failed", error[:2000]


async def send(job: JobContext) -> dict[str, Any]:
    settings = job.services.settings.messaging
    async with job.reads() as reads:
        message = await reads.get(Message, job.payload["message_id"])
        if message is None or message.status not in ("queued", "sending", "failed"):
            return {"skipped": f"message is {message.status if message else 'gone'}"}
        lead_id = (await reads.get(Conversation, message.conversation_id)).lead_id
        lead = await reads.get(Lead, lead_id)
    # Check the channel's rules and reserve the send in one short transaction that locks the
    # conversation, so concurrent sends cannot exceed a per-window cap together.
    async with write_sessions(job.services.db)() as reserve:
        conversation = await reserve.get(Conversation, message.conversation_id, with_for_update=True)
        row = await reserve.get(ChannelConnection, conversation.connection_id)
        last_in = aware(conversation.last_inbound_at)
        sent_since = await reserve.scalar(select(func.count()).select_from(Message).where(
            Message.conversation_id == conversation.id, Message.direction == "outbound", Message.id != message.id,
            Message.status.in_(("sending", "sent", "delivered", "read")), Message.sent_at >= (last_in or utcnow())))
        plan = rules.plan_send(conversation.channel, author=message.author, now=utcnow(), last_inbound_at=last_in,
                               sent_since_inbound=int(sent_since or 0), options=row.options or {})
        if plan.allowed:
            reserved = await reserve.get(Message, message.id)
            reserved.status, reserved.sent_at = "sending", utcnow()
        await reserve.commit()
    channel = conversation.channel
    connection = open_connection(row)
    if not plan.allowed:
        external_id = None
    else:
        text, timeout = rules.clip(channel, message.content), settings.send_timeout_seconds
        if channel == "whatsapp":
            external_id = await senders.send_whatsapp(settings.meta_graph_url, connection, lead.phone or lead.external_user_id, text, plan, timeout)
        elif channel == "tiktok":
            external_id = await senders.send_tiktok(settings.tiktok_api_url, connection, conversation.external_thread_id or lead.external_user_id, text, timeout)
        else:
            external_id = await senders.send_messenger(settings.meta_graph_url, connection, lead.external_user_id, text, plan, timeout)
    message = await job.session.get(Message, message.id)
    if not plan.allowed:
        message.status, message.error = "blocked", plan.reason
        return {"sent": False, "reason": plan.reason}
    message.status, message.external_id, message.sent_at, message.error = "sent", external_id, utcnow(), None
    message.details = {**(message.details or {}), "mode": plan.mode, **({"template": plan.template["name"]} if plan.template else {})}
    return {"sent": True, "external_id": external_id, "mode": plan.mode}


for _channel in CHANNELS:
    register(f"messaging.send_{_channel}", on_dead=_mark_failed)(send)

"""The webhook inbox: store each event once (unique channel + external id), enqueue its job."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.db import upsert_insert
from aibroker.jobs import enqueue
from aibroker.kit.ids import new_id
from aibroker.messaging.normalize import MESSAGE, InboundEvent
from aibroker.models import ChannelConnection, WebhookEvent

PROCESS_EVENT = "messaging.process_event"


async def store(session: AsyncSession, channel: str, event: InboundEvent, connection: ChannelConnection) -> bool:
    """Insert the event (a replay does nothing) and, when new, its processing job. True if new."""
    event_id = new_id("whe")
    stmt = (
        upsert_insert(session, WebhookEvent)
        .values(
            id=event_id, channel=channel, external_id=event.external_id[:255], organization_id=connection.organization_id,
            connection_id=connection.id, kind=event.kind, payload={"data": event.data, "raw": event.raw},
        )
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(WebhookEvent.id)
    )
    if (await session.execute(stmt)).scalar() is None:
        return False
    # Inbound messages before receipts: a person is waiting for the answer.
    priority = 10 if event.kind == MESSAGE else 0
    await enqueue(session, PROCESS_EVENT, {"event_id": event_id}, organization_id=connection.organization_id, priority=priority)
    return True

"""Delivers stored events to the platform's webhook (AIBROKER_ALERT_WEBHOOK_URL), signed.

Several broker processes may run a deliverer against one database: each claims a few
due events with one UPDATE (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serializes
writers) that bumps `delivery_attempts` and leases the rows by pushing `next_attempt_at`
ahead, so no two processes send the same event, and an event claimed by a process that
died is retried once its lease runs out. Failures retry with exponential backoff until
`alert_max_attempts`; `last_error` says why.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.config import BillingSettings
from aibroker.kit.clock import utcnow
from aibroker.models import Event
from aibroker.notifications.signing import SIGNATURE_HEADER, sign
from aibroker.tenancy.secrets import open_event_data

log = logging.getLogger(__name__)

CLAIM_BATCH = 50
PARALLEL_SENDS = 8  # per process: polite to the receiver, still quick to drain a backlog


@dataclass(slots=True)
class Claimed:
    id: str
    organization_id: str | None
    type: str
    payload: dict[str, Any]
    created_at: dt.datetime | None
    attempt: int
    sealed: bytes | None = None  # webhook-only fields (an invitation's link), sealed


def event_body(event: Claimed, secret: str = "") -> bytes:
    """What the webhook receives (JSON): the payload, plus its sealed fields opened with `secret`."""
    data = event.payload
    if event.sealed is not None:
        try:
            data = {**data, **open_event_data(event.id, event.sealed, secret)}
        except Exception:  # sealed under a key this process lacks: deliver without it, say so
            log.warning("event %s: its sealed fields do not open with AIBROKER_SECRET_KEY", event.id)
    created = event.created_at
    if created is not None and created.tzinfo is None:  # SQLite drops the zone; we store UTC
        created = created.replace(tzinfo=dt.UTC)
    return orjson.dumps(
        {
            "id": event.id,
            "type": event.type,
            "organization_id": event.organization_id,
            "created_at": created.isoformat() if created else None,
            "attempt": event.attempt,
            "data": data,
        }
    )


class EventDeliverer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: BillingSettings,
        *,
        secret: str,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        assert settings.alert_webhook_url, "the deliverer needs AIBROKER_ALERT_WEBHOOK_URL"
        self._sessions = sessions
        self._settings = settings
        self._url = settings.alert_webhook_url
        self._secret = settings.alert_webhook_secret or secret
        self._seal_secret = secret  # AIBROKER_SECRET_KEY: opens the events' sealed fields
        self._client = client or httpx.AsyncClient(timeout=settings.alert_timeout_seconds)

    def backoff(self, attempt: int) -> dt.timedelta:
        seconds = self._settings.alert_retry_base_seconds * 2 ** max(0, attempt - 1)
        return dt.timedelta(seconds=min(seconds, self._settings.alert_retry_max_seconds))

    async def deliver_due(self, now: dt.datetime | None = None) -> int:
        """Claim and send the events due now; returns how many were claimed."""
        now = now or utcnow()
        claimed = await self._claim(now)
        if not claimed:
            return 0
        limit = asyncio.Semaphore(PARALLEL_SENDS)

        async def send(event: Claimed) -> str | None:
            async with limit:
                return await self._send(event)

        outcomes = await asyncio.gather(*(send(e) for e in claimed))
        await self._record(claimed, outcomes, now)
        return len(claimed)

    async def _claim(self, now: dt.datetime) -> list[Claimed]:
        lease = now + dt.timedelta(seconds=self._settings.alert_timeout_seconds * 3 + 30)
        due = (
            select(Event.id)
            .where(
                Event.delivered_at.is_(None),
                Event.delivery_attempts < self._settings.alert_max_attempts,
                or_(Event.next_attempt_at.is_(None), Event.next_attempt_at <= now),
            )
            .order_by(Event.created_at)
            .limit(CLAIM_BATCH)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(Event)
            .where(Event.id.in_(due.scalar_subquery()))
            .values(delivery_attempts=Event.delivery_attempts + 1, next_attempt_at=lease)
            .returning(Event.id, Event.organization_id, Event.type, Event.payload, Event.created_at, Event.delivery_attempts,
                       Event.sealed_payload)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(claim)).all()
        return [Claimed(*row) for row in sorted(rows, key=lambda r: (r.created_at is None, r.created_at))]

    async def _send(self, event: Claimed) -> str | None:
        """None when delivered, else why not."""
        body = event_body(event, self._seal_secret)
        headers = {
            "content-type": "application/json",
            "user-agent": "aibroker-webhooks",
            SIGNATURE_HEADER: sign(self._secret, body),
            "x-aibroker-event-id": event.id,
            "x-aibroker-event-type": event.type,
        }
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"

    async def _record(self, claimed: list[Claimed], outcomes: list[str | None], now: dt.datetime) -> None:
        async with self._sessions() as session, session.begin():
            for event, error in zip(claimed, outcomes, strict=True):
                if error is None:
                    # Delivered: the sealed fields (an invitation's token) are kept no longer.
                    values: dict[str, Any] = {"delivered_at": now, "last_error": None, "next_attempt_at": None,
                                              "sealed_payload": None, "key_id": None}
                else:
                    log.warning("webhook delivery of %s failed (attempt %d): %s", event.id, event.attempt, error)
                    values = {"last_error": error, "next_attempt_at": now + self.backoff(event.attempt)}
                await session.execute(
                    update(Event).where(Event.id == event.id).values(**values).execution_options(synchronize_session=False)
                )

    async def run_forever(self) -> None:
        """The background loop (app lifespan): deliver what is due, then wait a little."""
        while True:
            try:
                busy = await self.deliver_due()
            except Exception:
                log.exception("event delivery failed")
                busy = 0
            if busy < CLAIM_BATCH:
                await asyncio.sleep(self._settings.alert_poll_seconds)

    async def aclose(self) -> None:
        await self._client.aclose()

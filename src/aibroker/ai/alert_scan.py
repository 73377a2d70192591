"""One alert scan: run the checks, record each alert once (an event: the platform's signed
webhook delivers it), and give every alert event not yet mailed (these and the existing
low-balance and quota events) its e-mail row and `alerts.send_email` job, in one transaction.

Any process may scan at any time: event ids and e-mail rows are written once (alert_store),
so concurrent or repeated scans send nothing twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai import alert_rules as rules
from aibroker.ai.alert_store import add_email, emit
from aibroker.ai.alert_tasks import SEND_EMAIL
from aibroker.jobs.queue import enqueue
from aibroker.kit.clock import utcnow
from aibroker.kit.money import to_micros
from aibroker.models import AlertEmail, AlertSetting, Event, Membership, User

log = logging.getLogger(__name__)

MAILED_TYPES = ("wallet.low_balance", "quota.warning", "quota.exceeded")
MAIL_LOOKBACK = dt.timedelta(days=2)
MAIL_BATCH = 500
NOTIFIED_ROLES = ("OWNER", "ADMIN")


@dataclass(slots=True)
class ScanResult:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    emails_queued: int = 0


class AlertScanner:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.settings = services.settings.alerts
        threshold = self.settings.ai_cost_alert_threshold
        self.default_monthly = to_micros(threshold) if threshold else None
        self.process = f"{socket.gethostname()}:{os.getpid()}"

    async def scan(self, now: dt.datetime | None = None) -> ScanResult:
        now = now or utcnow()
        s = self.settings
        result = ScanResult()
        async with self.services.db.sessions() as session:
            found = [
                *await rules.spend(session, now, self.default_monthly, s.alert_key_expiry_days),
                *await rules.error_rates(session, now, s.alert_error_rate, s.alert_error_min_requests),
                *rules.open_breakers(getattr(self.services.pool, "breakers", {}), now, self.process),
                *await rules.expiring_keys(session, now, self.default_monthly, s.alert_key_expiry_days),
            ]
            for alert in found:
                event_id = await emit(session, alert.kind, alert.organization_id, alert.dedup, alert.payload)
                if event_id is not None:
                    result.alerts.append({"id": event_id, "type": alert.kind, "organization_id": alert.organization_id})
            if s.smtp_url:
                result.emails_queued = await self._queue_emails(session, now)
            await session.commit()
        return result

    async def _queue_emails(self, session: AsyncSession, now: dt.datetime) -> int:
        pending = (await session.execute(
            select(Event.id, Event.organization_id, Event.type)
            .where(Event.created_at >= now - MAIL_LOOKBACK, or_(Event.type.like("alert.%"), Event.type.in_(MAILED_TYPES)),
                   ~exists().where(AlertEmail.event_id == Event.id))
            .order_by(Event.created_at).limit(MAIL_BATCH)
        )).all()
        queued = 0
        for event_id, org_id, kind in pending:
            recipients, enabled = await self._recipients(session, org_id)
            status = "pending" if enabled and recipients else "skipped"
            written = await add_email(session, event_id, org_id, recipients, status, {"type": kind})
            if written and status == "pending":
                await enqueue(session, SEND_EMAIL, {"event_id": event_id}, organization_id=org_id,
                              max_attempts=self.settings.alert_email_max_attempts)
                queued += 1
        return queued

    async def _recipients(self, session: AsyncSession, org_id: str | None) -> tuple[list[str], bool]:
        """(addresses, e-mail enabled): the organization's alert e-mails, else its owners' and
        admins'; the platform's for platform alerts."""
        if org_id is None:
            return [a.strip() for a in (self.settings.alert_platform_emails or "").split(",") if a.strip()], True
        setting = await session.get(AlertSetting, org_id)
        if setting is not None and (not setting.enabled or not setting.email_enabled):
            return [], False
        if setting is not None and setting.emails:
            return list(setting.emails), True
        members = await session.scalars(
            select(User.email).join(Membership, Membership.user_id == User.id)
            .where(Membership.organization_id == org_id, Membership.role.in_(NOTIFIED_ROLES)).order_by(User.email)
        )
        return list(members.all()), True


async def scan_forever(scanner: AlertScanner, every: float) -> None:
    """The background loop (app lifespan)."""
    while True:
        await asyncio.sleep(every)
        try:
            await scanner.scan()
        except Exception:
            log.exception("alert scan failed")

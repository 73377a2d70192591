"""The `alerts.send_email` job: one alert's e-mail. An unreachable SMTP server retries through
the job queue (backoff, up to AIBROKER_ALERT_EMAIL_MAX_ATTEMPTS); a permanent refusal (5xx)
or the last failed attempt leaves the alert_emails row `failed` with the reason."""

from __future__ import annotations

from typing import Any

import aiosmtplib
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai.alert_email import SmtpServer, build, send
from aibroker.jobs.registry import GiveUp, JobContext, RetryLater, register
from aibroker.kit.clock import utcnow
from aibroker.models import AlertEmail, Event

SEND_EMAIL = "alerts.send_email"


async def _failed(session: AsyncSession, payload: dict[str, Any], error: str) -> None:
    await session.execute(update(AlertEmail).where(AlertEmail.event_id == payload.get("event_id"))
                          .values(status="failed", last_error=error[:500]))


@register(SEND_EMAIL, on_dead=_failed)
async def send_alert_email(ctx: JobContext) -> dict[str, Any]:
    settings = ctx.services.settings.alerts
    event_id = str(ctx.payload.get("event_id"))
    async with ctx.reads() as reads:  # read first: the job's own session takes SQLite's write lock
        row = await reads.get(AlertEmail, event_id)
        event = await reads.get(Event, event_id)
    if row is None or event is None or row.status == "sent":
        return {"sent": False, "reason": "already sent" if row is not None and row.status == "sent" else "gone"}
    if not settings.smtp_url:
        raise RetryLater("AIBROKER_SMTP_URL is not set")
    try:
        server = SmtpServer.parse(settings.smtp_url)
    except ValueError as exc:
        raise GiveUp(str(exc)) from exc
    message = build(event.id, event.type, event.organization_id, event.payload or {}, event.created_at,
                    list(row.recipients), settings.alert_email_from)
    try:
        await send(message, server, settings.smtp_timeout_seconds)
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code >= 500:
            raise GiveUp(f"SMTP refused the message: {exc.code} {exc.message}") from exc
        raise RetryLater(f"SMTP {exc.code}: {exc.message}") from exc
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        raise RetryLater(f"SMTP unreachable: {type(exc).__name__}: {exc}"[:300]) from exc
    await ctx.session.execute(update(AlertEmail).where(AlertEmail.event_id == event_id).values(
        status="sent", sent_at=utcnow(), attempts=ctx.attempts, last_error=None))
    return {"sent": True, "recipients": len(row.recipients)}

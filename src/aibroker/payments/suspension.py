"""An organization whose subscription goes unpaid, or ends, is suspended once its period is
over plus AIBROKER_SUBSCRIPTION_GRACE_DAYS; a payment reactivates it (service.apply_subscription
and mark_paid set it active again).

Checked after every payment event; when the deadline is still ahead, a delayed job
(`payments.enforce_subscription`) checks again then, so no event needs to arrive."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.config import PaymentSettings
from aibroker.jobs.queue import enqueue
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Event, Organization, Subscription
from aibroker.payments.service import Outcome
from aibroker.tenancy.scoped import scoped

JOB = "payments.enforce_subscription"
UNPAID = ("past_due", "unpaid")
ENDED = ("canceled", "cancelled", "incomplete_expired")
SUSPENDABLE = ("active", "trial")  # never touch an organization the platform admin cancelled


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def lapses_at(sub: Subscription, grace: dt.timedelta) -> dt.datetime | None:
    """When the organization must be suspended, or None while the subscription is in good standing.
    A Mercado Pago plan is one paid month (no renewal): it lapses when its month is over."""
    period_end = _aware(sub.current_period_end)
    if sub.status in UNPAID or sub.status in ENDED:
        return (period_end or _aware(sub.updated_at) or utcnow()) + grace
    if sub.provider == "mercadopago" and period_end is not None:
        return period_end + grace
    return None


async def enforce(session: AsyncSession, settings: PaymentSettings, organization_id: str | None, outcome: Outcome | None = None) -> str:
    """Suspend now if the deadline has passed, else schedule the next check. Returns what it did."""
    if not organization_id:
        return "no organization"
    org = await session.get(Organization, organization_id)
    sub = await session.scalar(scoped(Subscription, organization_id))
    if org is None or sub is None:
        return "no subscription"
    due = lapses_at(sub, dt.timedelta(days=settings.subscription_grace_days))
    if due is None:
        return "in good standing"
    now = utcnow()
    if due > now:
        await enqueue(session, JOB, {"organization_id": organization_id}, organization_id=organization_id,
                      delay_seconds=(due - now).total_seconds() + 1)
        return f"suspension check scheduled at {due.isoformat()}"
    if org.status not in SUSPENDABLE:
        return f"organization already {org.status}"
    org.status = "suspended"
    org.updated_at = now
    session.add(Event(id=new_id("evt"), organization_id=org.id, type="organization.suspended", delivery_attempts=0,
                      payload={"reason": "subscription_unpaid" if sub.status in UNPAID else "subscription_ended",
                               "subscription_status": sub.status, "lapsed_at": due.isoformat()}))
    await session.flush()
    if outcome is not None:
        outcome.actions.append(f"organization suspended: subscription {sub.status} past its period and grace")
    return "suspended"

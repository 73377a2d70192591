"""What a confirmed payment does: activate or change the plan, issue the organization code,
credit the wallet (through the ledger, idempotent), keep the subscription in step.

Provider-neutral: the Stripe and Mercado Pago webhooks translate their events into these
calls. Services take a session and never commit."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.billing.batch import PostEntry
from aibroker.billing.service import post_entry
from aibroker.billing.writer import MoneyWriter
from aibroker.db import upsert_insert
from aibroker.errors import InvalidRequest, NotFound
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Organization, PaymentEvent, Subscription
from aibroker.payments import records
from aibroker.tenancy import codes
from aibroker.tenancy.plans import PLANS, get_plan, max_users
from aibroker.tenancy.scoped import scoped

log = logging.getLogger("aibroker.payments")

# Provider subscription status -> organization status. past_due / unpaid change nothing here:
# suspension.enforce suspends once the period and its grace are over.
_ORG_STATUS = {"active": "active", "trialing": "active",
               "incomplete": "trial", "incomplete_expired": "trial", "paused": "suspended"}


@dataclass
class Outcome:
    """What handling an event did (stored with the inbox row, returned to the caller)."""

    actions: list[str] = field(default_factory=list)
    organization_id: str | None = None
    credited_micros: int = 0
    reversed_micros: int = 0  # taken back by refunds and chargebacks (negative: reinstated)
    code: str | None = None


async def already_seen(session: AsyncSession, provider: str, external_id: str) -> bool:
    return bool(await session.scalar(select(PaymentEvent.id).where(PaymentEvent.provider == provider, PaymentEvent.external_id == external_id)))


async def record_event(session: AsyncSession, *, provider: str, external_id: str, type: str, outcome: Outcome, payload: dict[str, Any]) -> bool:
    """Insert the inbox row; False when another delivery stored it first (conflict: do nothing)."""
    stmt = upsert_insert(session, PaymentEvent).values(
        id=new_id("pev"), provider=provider, external_id=external_id, type=type, organization_id=outcome.organization_id,
        payload={"outcome": outcome.actions, "credited_micros": outcome.credited_micros, "reversed_micros": outcome.reversed_micros,
                 "object": payload},
        created_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["provider", "external_id"])
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def credit_wallet(writer: MoneyWriter, outcome: Outcome, *, organization_id: str, amount_micros: int, idempotency_key: str, payment_ref: str, description: str) -> None:
    """A recharge through the ledger; the same key never credits twice (replays, retries).
    Its payment row (`<provider>:<external id>` = the key) commits with the credit."""
    provider, _, external_id = idempotency_key.partition(":")
    after = records.recharge_hook(provider=provider, external_id=external_id, organization_id=organization_id,
                                  amount_micros=amount_micros, ledger_key=idempotency_key, payment_ref=payment_ref)
    try:
        posted = await post_entry(writer, PostEntry(organization_id, "recharge", amount_micros, idempotency_key=idempotency_key,
                                                    payment_ref=payment_ref, description=description, after=after))
    except NotFound:
        outcome.actions.append("no wallet: nothing credited")
        return
    outcome.credited_micros = amount_micros
    outcome.actions.append(f"credited {amount_micros} micros (balance {posted.balance_after})")


async def organization(session: AsyncSession, organization_id: str | None) -> Organization | None:
    return await session.get(Organization, organization_id) if organization_id else None


async def mark_paid(session: AsyncSession, outcome: Outcome, org: Organization, *, payment_ref: str) -> None:
    """Any confirmed payment: a TRIAL organization becomes ACTIVE and gets its code."""
    if org.status in ("trial", "suspended"):
        org.status = "active"
        outcome.actions.append("organization activated")
    code = await codes.issue_code(session, organization_id=org.id, payment_ref=payment_ref)
    outcome.code = code.code
    outcome.actions.append("organization code issued")


async def _subscription(session: AsyncSession, organization_id: str) -> Subscription | None:
    return await session.scalar(scoped(Subscription, organization_id))


async def apply_subscription(
    session: AsyncSession,
    outcome: Outcome,
    org: Organization,
    *,
    provider: str,
    plan: str | None,
    status: str,
    event_time: int,
    customer_id: str | None = None,
    subscription_id: str | None = None,
    period_end: dt.datetime | None = None,
) -> None:
    """Move the subscription forward. An event older than the last one applied changes nothing
    (providers do not guarantee order)."""
    sub = await _subscription(session, org.id)
    if sub is not None and event_time < sub.last_event_at:
        outcome.actions.append("stale subscription event ignored")
        return
    plan = (plan or (sub.plan if sub else None) or org.plan).lower()
    try:
        await get_plan(session, plan)
    except InvalidRequest:
        outcome.actions.append(f"unknown plan '{plan}' ignored")
        return
    if sub is None:
        sub = Subscription(id=new_id("sub"), organization_id=org.id, plan=plan, provider=provider, status=status, last_event_at=event_time)
        session.add(sub)
    sub.plan, sub.provider, sub.status, sub.last_event_at, sub.updated_at = plan, provider, status, event_time, utcnow()
    sub.external_customer_id = customer_id or sub.external_customer_id
    sub.external_subscription_id = subscription_id or sub.external_subscription_id
    sub.current_period_end = period_end or sub.current_period_end
    if status in ("canceled", "cancelled"):
        org.plan = "free"  # the subscription ended: back to the free plan, the wallet stays usable
        outcome.actions.append("subscription ended: plan FREE")
    else:
        org.plan = plan
        org.status = _ORG_STATUS.get(status, org.status)
        outcome.actions.append(f"plan {plan.upper()} ({status})")
    org.updated_at = utcnow()
    await session.flush()


async def subscription_view(session: AsyncSession, organization_id: str, *, show_code: bool = False) -> dict[str, Any]:
    """The subscription; the organization code only with `show_code` (an OWNER / ADMIN asks: it is a credential)."""
    org = await session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"no organization '{organization_id}'")
    sub = await _subscription(session, organization_id)
    code = await codes.current_code(session, organization_id) if show_code else None
    plan = PLANS.get(org.plan)
    users_limit = await max_users(session, org.plan)
    return {
        "organization_id": org.id,
        "plan": org.plan.upper(),
        "status": org.status.upper(),
        "limits": {"max_users": users_limit, "max_recordings": plan.max_recordings, "max_storage_gb": plan.max_storage_gb} if plan else None,
        "organization_code": code.code if code else None,
        "subscription": None if sub is None else {
            "provider": sub.provider, "plan": sub.plan.upper(), "status": sub.status,
            "external_subscription_id": sub.external_subscription_id, "current_period_end": sub.current_period_end,
        },
    }

"""Stripe events -> payment service calls. Verification happens before (webhooks.py).

Order matters on SQLite: the wallet credit (its own transaction, in the money writer)
runs before this session writes anything, so the two never wait on each other."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.billing.writer import MoneyWriter
from aibroker.models import Subscription
from aibroker.payments import stripe_reversals
from aibroker.payments.service import (
    Outcome,
    apply_subscription,
    credit_wallet,
    mark_paid,
    organization,
)

CHECKOUT_DONE = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
SUBSCRIPTION_CHANGED = ("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted")
DISPUTE_CHANGED = ("charge.dispute.created", stripe_reversals.DISPUTE_CLOSED)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _timestamp(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(value), dt.UTC) if isinstance(value, int) else None


async def _org_for_subscription(session: AsyncSession, subscription_id: str | None, meta: dict[str, Any]) -> str | None:
    if meta.get("organization_id"):
        return str(meta["organization_id"])
    if not subscription_id:
        return None
    # Tenant routing from the payload: a renewal names only the subscription.
    return await session.scalar(select(Subscription.organization_id).where(Subscription.external_subscription_id == subscription_id))


async def handle(session: AsyncSession, writer: MoneyWriter, event: dict[str, Any]) -> Outcome:
    outcome = Outcome()
    kind, obj, created = event["type"], event["data"]["object"], int(event.get("created") or 0)
    if kind in CHECKOUT_DONE:
        await _checkout_completed(session, writer, outcome, obj, created)
    elif kind == "invoice.paid":
        await _invoice_paid(session, outcome, obj, created)
    elif kind in SUBSCRIPTION_CHANGED:
        await _subscription_changed(session, outcome, obj, created, deleted=kind.endswith(".deleted"))
    elif kind == "charge.refunded":
        await stripe_reversals.charge_refunded(session, writer, outcome, obj)
    elif kind in DISPUTE_CHANGED:
        await stripe_reversals.dispute_changed(session, writer, outcome, obj, closed=kind == stripe_reversals.DISPUTE_CLOSED)
    else:
        outcome.actions.append("event type not handled")
    return outcome


async def _checkout_completed(session: AsyncSession, writer: MoneyWriter, outcome: Outcome, obj: dict[str, Any], created: int) -> None:
    meta = _meta(obj)
    org_id = obj.get("client_reference_id") or meta.get("organization_id")
    outcome.organization_id = org_id
    if obj.get("payment_status") not in ("paid", "no_payment_required"):
        outcome.actions.append("payment not settled yet (delayed method): waiting")
        return
    if meta.get("kind") == "wallet_recharge":
        amount = str(meta.get("amount_micros", ""))
        if not amount.isdigit() or int(amount) <= 0:
            outcome.actions.append("recharge without a valid amount_micros: nothing credited")
            return
        # One credit per Checkout Session, whichever of its events arrives (and however often).
        # Its payment_ref is the PaymentIntent: refunds and disputes find the recharge by it.
        await credit_wallet(writer, outcome, organization_id=str(org_id), amount_micros=int(amount),
                            idempotency_key=f"stripe:{obj['id']}", payment_ref=str(obj.get("payment_intent") or obj["id"]),
                            description="Stripe wallet recharge")
    org = await organization(session, org_id)
    if org is None:
        outcome.actions.append("unknown organization")
        return
    await mark_paid(session, outcome, org, payment_ref=str(obj["id"]))
    if meta.get("kind") == "subscription" or obj.get("mode") == "subscription":
        await apply_subscription(session, outcome, org, provider="stripe", plan=meta.get("plan"), status="active",
                                 event_time=created, customer_id=obj.get("customer"), subscription_id=obj.get("subscription"))


def _invoice_subscription(obj: dict[str, Any]) -> tuple[str | None, dict[str, Any], dt.datetime | None]:
    details = obj.get("subscription_details") or (obj.get("parent") or {}).get("subscription_details") or {}
    subscription_id = obj.get("subscription") or details.get("subscription")
    meta = details.get("metadata") or {}
    lines = ((obj.get("lines") or {}).get("data") or [{}])
    period_end = _timestamp(((lines[0] or {}).get("period") or {}).get("end")) or _timestamp(obj.get("period_end"))
    if not meta:
        meta = (lines[0] or {}).get("metadata") or {}
    return subscription_id, meta, period_end


async def _invoice_paid(session: AsyncSession, outcome: Outcome, obj: dict[str, Any], created: int) -> None:
    subscription_id, meta, period_end = _invoice_subscription(obj)
    outcome.organization_id = await _org_for_subscription(session, subscription_id, meta)
    org = await organization(session, outcome.organization_id)
    if org is None:
        outcome.actions.append("unknown organization")
        return
    await mark_paid(session, outcome, org, payment_ref=str(obj.get("id")))
    await apply_subscription(session, outcome, org, provider="stripe", plan=meta.get("plan"), status="active", event_time=created,
                             customer_id=obj.get("customer"), subscription_id=subscription_id, period_end=period_end)


async def _subscription_changed(session: AsyncSession, outcome: Outcome, obj: dict[str, Any], created: int, *, deleted: bool) -> None:
    meta = _meta(obj)
    outcome.organization_id = await _org_for_subscription(session, obj.get("id"), meta)
    org = await organization(session, outcome.organization_id)
    if org is None:
        outcome.actions.append("unknown organization")
        return
    items = ((obj.get("items") or {}).get("data") or [{}])
    period_end = _timestamp(obj.get("current_period_end")) or _timestamp((items[0] or {}).get("current_period_end"))
    status = "canceled" if deleted else str(obj.get("status") or "active")
    await apply_subscription(session, outcome, org, provider="stripe", plan=meta.get("plan"), status=status, event_time=created,
                             customer_id=obj.get("customer"), subscription_id=obj.get("id"), period_end=period_end)

"""Stripe events -> payment service calls. Verification happens before (webhooks.py).

Order matters on SQLite: the wallet credit (its own transaction, in the money writer)
runs before this session writes anything, so the two never wait on each other."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
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
from aibroker.payments.webhooks import malformed

CHECKOUT_DONE = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
SUBSCRIPTION_CHANGED = ("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted")
DISPUTE_CHANGED = ("charge.dispute.created", stripe_reversals.DISPUTE_CLOSED)


# -- the shapes of the objects we read (checked first: a wrong type is a 400, never a 500) ----

Time = Annotated[StrictInt, Field(ge=0, le=253_402_300_799)]  # Unix seconds a datetime can hold
Metadata = dict[str, StrictStr]  # Stripe metadata values are strings


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Session(_Open):
    id: StrictStr
    client_reference_id: StrictStr | None = None
    payment_status: StrictStr | None = None
    payment_intent: StrictStr | None = None
    mode: StrictStr | None = None
    customer: StrictStr | None = None
    subscription: StrictStr | None = None
    metadata: Metadata | None = None


class _Details(_Open):
    subscription: StrictStr | None = None
    metadata: Metadata | None = None


class _Parent(_Open):
    subscription_details: _Details | None = None


class _Period(_Open):
    end: Time | None = None


class _Line(_Open):
    period: _Period | None = None
    metadata: Metadata | None = None


class _Lines(_Open):
    data: list[_Line] | None = None


class _Invoice(_Open):
    id: StrictStr
    subscription: StrictStr | None = None
    subscription_details: _Details | None = None
    parent: _Parent | None = None
    lines: _Lines | None = None
    period_end: Time | None = None
    customer: StrictStr | None = None


class _Item(_Open):
    current_period_end: Time | None = None


class _Items(_Open):
    data: list[_Item] | None = None


class _Subscription(_Open):
    id: StrictStr
    status: StrictStr | None = None
    metadata: Metadata | None = None
    current_period_end: Time | None = None
    items: _Items | None = None
    customer: StrictStr | None = None


def check_shape(event: dict[str, Any]) -> None:
    """400 (`malformed_event`) when a field we read has the wrong type. Other event types are
    acknowledged unread (refunds and disputes check their own fields)."""
    kind = event["type"]
    model = (_Session if kind in CHECKOUT_DONE else _Invoice if kind == "invoice.paid"
             else _Subscription if kind in SUBSCRIPTION_CHANGED else None)
    try:
        _Time.model_validate({"created": event.get("created")})
        if model is not None:
            model.model_validate(event["data"]["object"])
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise malformed(f"Signed, but not a valid {kind} event: '{where}': {error['msg']}.") from None


class _Time(BaseModel):
    created: Time | None = None


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

"""Stripe refunds and disputes -> reversals of the wallet recharge the payment made (reversals.py).

Only wallet recharges are reversed: a charge whose PaymentIntent credited no recharge (a plan
payment, another product) is acknowledged and left alone.

Amounts come in the currency's minor unit. A recharge session charges cents
(stripe_checkout.recharge_params: micros // 10_000), so the same factor converts back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.billing.writer import MoneyWriter
from aibroker.models import PaymentEvent
from aibroker.payments.reversals import Recharge, reverse, stripe_recharge
from aibroker.payments.service import Outcome

MICROS_PER_MINOR_UNIT = 10_000
DISPUTE_CLOSED = "charge.dispute.closed"


def _amount(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def _recharge(session: AsyncSession, outcome: Outcome, payment_intent: Any) -> Recharge | None:
    if not isinstance(payment_intent, str) or not payment_intent:
        outcome.actions.append("no payment_intent: nothing reversed")
        return None
    recharge = await stripe_recharge(session, payment_intent)
    if recharge is None:
        outcome.actions.append(f"no wallet recharge was paid by {payment_intent}: nothing reversed")
    return recharge


async def charge_refunded(session: AsyncSession, writer: MoneyWriter, outcome: Outcome, charge: dict[str, Any]) -> None:
    """`charge.refunded` (full or partial): `amount_refunded` is the charge's cumulative total."""
    refunded = _amount(charge.get("amount_refunded"))
    if refunded is None or not isinstance(charge.get("id"), str):
        outcome.actions.append("charge without id or amount_refunded: nothing reversed")
        return
    recharge = await _recharge(session, outcome, charge.get("payment_intent"))
    if recharge is None:
        return
    await reverse(session, writer, outcome, recharge, stream=f"stripe-refund:{charge['id']}",
                  target=refunded * MICROS_PER_MINOR_UNIT,
                  description=f"Stripe refund of charge {charge['id']} ({recharge.payment_ref}): wallet recharge reversed")


async def dispute_changed(session: AsyncSession, writer: MoneyWriter, outcome: Outcome, dispute: dict[str, Any], *, closed: bool) -> None:
    """`charge.dispute.created` takes the disputed amount back; `charge.dispute.closed` as `won`
    gives it back (Stripe reinstates the funds), as `lost` makes sure it was taken.
    Inquiries (`warning_*` statuses) withdraw no funds and change nothing."""
    amount, status, dispute_id = _amount(dispute.get("amount")), str(dispute.get("status") or ""), dispute.get("id")
    if amount is None or not isinstance(dispute_id, str):
        outcome.actions.append("dispute without id or amount: nothing reversed")
        return
    recharge = await _recharge(session, outcome, dispute.get("payment_intent"))
    if recharge is None:
        return
    outcome.organization_id = recharge.organization_id  # stored with the event: _already_won reads it
    if status.startswith("warning_"):
        outcome.actions.append(f"inquiry {dispute_id} ({status}): no funds withdrawn, nothing reversed")
        return
    stream = f"stripe-dispute:{dispute_id}"
    if closed and status == "won":
        await reverse(session, writer, outcome, recharge, stream=stream, target=0, reinstate=True,
                      description=f"Stripe dispute {dispute_id} won ({recharge.payment_ref}): reversal reinstated")
        return
    if not closed and await _already_won(session, recharge.organization_id, dispute_id):
        outcome.actions.append(f"dispute {dispute_id} was already won: nothing reversed")  # delivered out of order
        return
    await reverse(session, writer, outcome, recharge, stream=stream, target=amount * MICROS_PER_MINOR_UNIT,
                  description=f"Stripe dispute {dispute_id} of charge {dispute.get('charge')} ({recharge.payment_ref}): wallet recharge reversed")


async def _already_won(session: AsyncSession, organization_id: str, dispute_id: str) -> bool:
    """A `won` closure stored before this (older) creation event arrived."""
    payloads = await session.scalars(select(PaymentEvent.payload).where(
        PaymentEvent.provider == "stripe", PaymentEvent.type == DISPUTE_CLOSED, PaymentEvent.organization_id == organization_id))
    for payload in payloads:
        obj = (payload or {}).get("object") or {}
        if obj.get("id") == dispute_id and obj.get("status") == "won":
            return True
    return False

"""Take back a wallet recharge whose payment was refunded or charged back.

A reversal is a negative `adjustment` ledger entry (the ledger's `refund` kind means money
given back TO a wallet, so it does not fit). It may take the wallet below zero: the money may
already have been spent, and the organization then gets 402 until it tops up.

Each source of reversal is a *stream* (a Stripe charge's refunds, one Stripe dispute, a
Mercado Pago payment's refunds or its chargeback), named in the entry's `payment_ref`, for
which the provider reports a cumulative amount. The entry posted is that amount minus what the
stream has already reversed, capped so that a recharge is never reversed beyond what it
credited. Replays and late, out-of-order deliveries therefore post nothing.

The entries of one recharge are keyed `reversal:<recharge key>:<n>`, n = 1, 2, ... The unique
idempotency key makes slot n a compare-and-swap: two deliveries that read the same state both
try slot n, one wins, the other re-reads and recomputes. Two partial refunds arriving at once
cannot both be measured from the same starting point."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.billing.batch import PostEntry
from aibroker.billing.service import post_entry
from aibroker.billing.writer import MoneyWriter
from aibroker.errors import Conflict, NotFound
from aibroker.models import LedgerEntry
from aibroker.payments import records
from aibroker.payments.service import Outcome

SLOTS_PER_READ = 16
MAX_ATTEMPTS = 20  # each lost race means another delivery posted; this many in a row is absurd


@dataclass(frozen=True, slots=True)
class Recharge:
    """The ledger credit a payment made."""

    organization_id: str
    key: str  # its idempotency key: stripe:<checkout session> | mercadopago:<payment id>
    payment_ref: str | None
    credited: int


async def recharge_by_key(session: AsyncSession, key: str) -> Recharge | None:
    row = (await session.execute(
        select(LedgerEntry.organization_id, LedgerEntry.payment_ref, LedgerEntry.amount_micros)
        .where(LedgerEntry.idempotency_key == key, LedgerEntry.kind == "recharge")
    )).first()
    return None if row is None else Recharge(row[0], key, row[1], int(row[2]))


async def stripe_recharge(session: AsyncSession, payment_intent: str) -> Recharge | None:
    """The Stripe Checkout recharge a PaymentIntent paid: its credit records the intent as payment_ref."""
    rows = await session.execute(
        select(LedgerEntry.organization_id, LedgerEntry.idempotency_key, LedgerEntry.amount_micros)
        .where(LedgerEntry.payment_ref == payment_intent, LedgerEntry.kind == "recharge")
    )
    for org_id, key, amount in rows:
        if key and key.startswith("stripe:"):  # not an admin top-up that quoted the same reference
            return Recharge(org_id, key, payment_intent, int(amount))
    return None


def _slot_key(recharge_key: str, n: int) -> str:
    return f"reversal:{recharge_key}:{n}"


async def _reversals(session: AsyncSession, recharge_key: str) -> tuple[list[tuple[str | None, int]], int]:
    """The recharge's reversal entries as (stream, amount), and the next free slot.
    Exact key look-ups (the unique index), a page of slots at a time."""
    found: list[tuple[str | None, int]] = []
    start, last = 1, 0
    while True:
        keys = {_slot_key(recharge_key, n): n for n in range(start, start + SLOTS_PER_READ)}
        rows = list(await session.execute(
            select(LedgerEntry.idempotency_key, LedgerEntry.payment_ref, LedgerEntry.amount_micros)
            .where(LedgerEntry.idempotency_key.in_(list(keys)))
        ))
        for key, stream, amount in rows:
            found.append((stream, int(amount)))
            last = max(last, keys[key])
        if len(rows) < SLOTS_PER_READ:
            return found, last + 1
        start += SLOTS_PER_READ


async def reverse(
    session: AsyncSession,
    writer: MoneyWriter,
    outcome: Outcome,
    recharge: Recharge,
    *,
    stream: str,
    target: int,
    description: str,
    reinstate: bool = False,
) -> None:
    """Bring what `stream` has reversed of `recharge` up to `target` micros. It never goes down,
    because deliveries come out of order, unless `reinstate` (a dispute the merchant won)."""
    outcome.organization_id = recharge.organization_id
    for _ in range(MAX_ATTEMPTS):
        await session.rollback()  # a fresh snapshot: another delivery may just have posted
        entries, slot = await _reversals(session, recharge.key)
        await session.rollback()  # SQLite: hold no read snapshot while the writer commits
        by_stream = -sum(amount for name, amount in entries if name == stream)
        total = -sum(amount for _, amount in entries)
        delta = max(0, target) - by_stream
        if delta > 0:
            delta = max(0, min(delta, recharge.credited - total))
        elif not reinstate:
            delta = 0
        if delta == 0:
            outcome.actions.append(f"{stream}: nothing (more) to reverse")
            return
        try:
            posted = await post_entry(writer, PostEntry(
                recharge.organization_id, "adjustment", -delta, idempotency_key=_slot_key(recharge.key, slot),
                payment_ref=stream, description=description, allow_negative=True,
                after=records.reversal_hook(ledger_key=recharge.key, stream=stream, target=target, reinstate=reinstate),
            ))
        except NotFound:  # the wallet went away with its organization
            outcome.actions.append("no wallet: nothing reversed")
            return
        if posted.duplicate:
            continue  # another delivery took this slot first: re-read and recompute
        outcome.reversed_micros += delta
        verb = "reversed" if delta > 0 else "reinstated"
        outcome.actions.append(f"{verb} {abs(delta)} micros of recharge {recharge.key} (balance {posted.balance_after})")
        return
    raise Conflict("too many concurrent reversals of this payment; retry", code="reversal_contention")

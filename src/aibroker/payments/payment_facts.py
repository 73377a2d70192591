"""What a provider event says about one payment, and how a payment row takes it in.

Pure functions over plain dicts (no database): the webhook processing and migration 0015's
backfill read the events the same way. Providers deliver out of order and more than once,
so merging is monotonic: a refunded total never goes down, a settled payment never goes back
to pending, a closed dispute is never reopened."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MICROS_PER_MINOR_UNIT = 10_000  # Stripe amounts are cents (two-decimal currencies, as checkout charges them)
MICROS_PER_UNIT = 1_000_000

STATUSES = ("pending", "succeeded", "failed", "refunded", "partially_refunded", "disputed")
KINDS = ("recharge", "subscription")
_BASE = ("pending", "succeeded", "failed")
_CLOSED_DISPUTES = ("won", "lost")

_STRIPE_PAID = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
_MP_STATUS = {"approved": "succeeded", "authorized": "pending", "pending": "pending", "in_process": "pending",
              "in_mediation": "succeeded", "rejected": "failed", "cancelled": "failed",
              "refunded": "succeeded", "charged_back": "succeeded"}


@dataclass(slots=True)
class Fact:
    """One event's news about a payment. None means "this event does not say"."""

    provider: str
    external_id: str | None = None  # the payment's own id, when the event names it
    payment_ref: str | None = None  # else found by reference (a Stripe PaymentIntent)
    ledger_key: str | None = None  # or by the idempotency key of the credit it made
    organization_id: str | None = None
    kind: str | None = None
    plan: str | None = None
    amount_micros: int | None = None
    currency: str | None = None
    status: str | None = None  # pending | succeeded | failed
    refunded_micros: int | None = None  # the provider's cumulative total
    dispute_status: str | None = None  # open | won | lost
    disputed_micros: int | None = None

    def creates(self) -> bool:
        """Enough to create the row when none exists yet."""
        return bool(self.external_id and self.organization_id and self.kind and self.amount_micros is not None
                    and self.currency and self.status)


MAX_MINOR_UNITS = 10**13  # bounds that fit the BIGINT columns whatever a provider sends


def _int(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MINOR_UNITS
    return value if ok else None


def _cents(value: Any) -> int | None:
    cents = _int(value)
    return None if cents is None else cents * MICROS_PER_MINOR_UNIT


def _major(value: Any) -> int | None:
    """Mercado Pago's major-unit decimals -> micros."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        micros = Decimal(str(value)) * MICROS_PER_UNIT
    except (InvalidOperation, ValueError):
        return None
    ok = micros.is_finite() and 0 <= micros <= MAX_MINOR_UNITS * MICROS_PER_MINOR_UNIT and micros == micros.to_integral_value()
    return int(micros) if ok else None


def _digits(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) <= 18 else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any, limit: int = 200) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _currency(value: Any) -> str | None:
    return value.upper()[:10] if isinstance(value, str) and value else None


def stripe_fact(event_type: str, obj: dict[str, Any]) -> Fact | None:
    meta = _dict(obj.get("metadata"))
    if event_type in (*_STRIPE_PAID, "checkout.session.async_payment_failed"):
        recharge = meta.get("kind") == "wallet_recharge"
        amount_meta = str(meta.get("amount_micros", ""))
        if event_type == "checkout.session.async_payment_failed":
            status = "failed"
        else:
            status = "succeeded" if obj.get("payment_status") in ("paid", "no_payment_required") else "pending"
        return Fact(
            "stripe",
            # A subscription's first payment is its first invoice: the same row as its `invoice.paid`.
            external_id=_str(obj.get("id")) if recharge else (_str(obj.get("invoice")) or _str(obj.get("id"))),
            payment_ref=_str(obj.get("payment_intent")),
            ledger_key=f"stripe:{obj['id']}" if recharge and _str(obj.get("id"), 190) else None,
            organization_id=_str(obj.get("client_reference_id")) or _str(meta.get("organization_id")),
            kind="recharge" if recharge else "subscription",
            plan=_str(meta.get("plan"), 40),
            amount_micros=_digits(amount_meta) if recharge else _cents(obj.get("amount_total")),
            currency=_currency(obj.get("currency")),
            status=status,
        )
    if event_type in ("invoice.paid", "invoice.payment_failed"):
        paid = event_type == "invoice.paid"
        details = _dict(obj.get("subscription_details")) or _dict(_dict(obj.get("parent")).get("subscription_details"))
        lines = _dict(obj.get("lines")).get("data")
        line_meta = _dict(lines[0]).get("metadata") if isinstance(lines, list) and lines else None
        meta = _dict(details.get("metadata")) or _dict(line_meta)
        return Fact(
            "stripe", external_id=_str(obj.get("id")), payment_ref=_str(obj.get("payment_intent")) or _str(obj.get("charge")),
            organization_id=_str(meta.get("organization_id"), 40), kind="subscription", plan=_str(meta.get("plan"), 40),
            amount_micros=_cents(obj.get("amount_paid") if paid else obj.get("amount_due")),
            currency=_currency(obj.get("currency")), status="succeeded" if paid else "failed",
        )
    if event_type == "charge.refunded":
        return Fact("stripe", payment_ref=_str(obj.get("payment_intent")), refunded_micros=_cents(obj.get("amount_refunded")))
    if event_type in ("charge.dispute.created", "charge.dispute.closed"):
        status = str(obj.get("status") or "")
        if status.startswith("warning_"):
            return None  # an inquiry withdraws no funds
        dispute = ("won" if status == "won" else "lost") if event_type.endswith(".closed") else "open"
        return Fact("stripe", payment_ref=_str(obj.get("payment_intent")), dispute_status=dispute,
                    disputed_micros=_cents(obj.get("amount")))
    return None


def mercadopago_fact(payment: dict[str, Any]) -> Fact | None:
    payment_id = payment.get("id")
    if isinstance(payment_id, bool) or not isinstance(payment_id, (int, str)) or not 0 < len(str(payment_id)) <= 100:
        return None
    meta = _dict(payment.get("metadata"))
    ref = str(payment.get("external_reference") or "").split(":")
    kind = meta.get("kind") or (ref[1] if len(ref) > 1 else None)
    status = str(payment.get("status") or "")
    amount_meta = str(meta.get("amount_micros", ""))
    fact = Fact(
        "mercadopago", external_id=str(payment_id), payment_ref=f"mp:{payment_id}",
        ledger_key=f"mercadopago:{payment_id}" if kind == "wallet_recharge" else None,
        organization_id=_str(meta.get("organization_id")) or (ref[0] or None),
        kind="recharge" if kind == "wallet_recharge" else "subscription" if kind == "subscription" else None,
        plan=_str(meta.get("plan"), 40),
        # What the payer paid (a recharge credits it only when it matches the preference).
        amount_micros=_major(payment.get("transaction_amount")) if _major(payment.get("transaction_amount")) is not None
        else _digits(amount_meta),
        currency=_currency(payment.get("currency_id")), status=_MP_STATUS.get(status),
        refunded_micros=_major(payment.get("transaction_amount_refunded")),
    )
    if status == "refunded":
        fact.refunded_micros = fact.amount_micros
    elif status == "charged_back":
        fact.dispute_status, fact.disputed_micros = "lost", fact.amount_micros
    elif status == "in_mediation":
        fact.dispute_status, fact.disputed_micros = "open", fact.amount_micros
    return fact


def derive_status(base: str, amount: int, refunded: int, dispute: str | None) -> str:
    if base != "succeeded":
        return base
    if dispute in ("open", "lost"):
        return "disputed"
    if refunded > 0:
        return "refunded" if refunded >= amount else "partially_refunded"
    return "succeeded"


def base_status(status: str) -> str:
    return status if status in ("pending", "failed") else "succeeded"


def merge(row: dict[str, Any], fact: Fact) -> dict[str, Any]:
    """The row's new values (only those that change) once `fact` is taken in."""
    base = base_status(row["status"])
    if fact.status in _BASE and fact.status != base:
        # Settled payments stay settled (a late `pending` changes nothing); a failed one may still be paid.
        if base == "pending" or (base == "failed" and fact.status == "succeeded"):
            base = fact.status
    refunded = max(int(row.get("refunded_micros") or 0), fact.refunded_micros or 0)
    dispute, disputed = row.get("dispute_status"), int(row.get("disputed_micros") or 0)
    if fact.dispute_status and dispute not in _CLOSED_DISPUTES:
        dispute = fact.dispute_status
        disputed = fact.disputed_micros if fact.disputed_micros is not None else disputed
    changes: dict[str, Any] = {}
    for name, value in (("refunded_micros", refunded), ("dispute_status", dispute), ("disputed_micros", disputed),
                        ("status", derive_status(base, int(row["amount_micros"]), refunded, dispute))):
        if row.get(name) != value:
            changes[name] = value
    for name in ("plan", "payment_ref", "ledger_key"):
        value = getattr(fact, name)
        if value and not row.get(name):
            changes[name] = value
    return changes

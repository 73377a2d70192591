"""Reading provider events into payment facts: hostile shapes never raise, and merging is
monotonic (replays and out-of-order deliveries never move a payment backwards)."""

from __future__ import annotations

import pytest

from aibroker.payments.payment_facts import Fact, mercadopago_fact, merge, stripe_fact

HOSTILE = [None, 1, "x", [1], {"data": [1]}, {"lines": {"data": "no"}}, {"amount_total": 10**30}, {"amount_total": True},
           {"id": "c" * 500}, {"metadata": {"kind": "wallet_recharge", "amount_micros": "9" * 40}}, {"metadata": "m"}]


@pytest.mark.parametrize("type_", ["checkout.session.completed", "invoice.paid", "invoice.payment_failed", "charge.refunded",
                                   "charge.dispute.created", "charge.dispute.closed", "checkout.session.async_payment_failed"])
@pytest.mark.parametrize("obj", [o for o in HOSTILE if isinstance(o, dict)])
def test_hostile_stripe_objects_never_raise_and_stay_in_bounds(type_, obj):
    fact = stripe_fact(type_, obj)
    if fact is not None:
        assert fact.amount_micros is None or 0 <= fact.amount_micros < 2**62
        assert fact.external_id is None or len(fact.external_id) <= 200
        assert not fact.creates()  # none of these names an organization


@pytest.mark.parametrize("payment", [{"id": True}, {"id": "9" * 300}, {"id": 5, "transaction_amount": "1e400"},
                                     {"id": 5, "transaction_amount": -3}, {"id": 5, "metadata": [], "status": ["approved"]}])
def test_hostile_mercadopago_payments_never_raise(payment):
    fact = mercadopago_fact(payment)
    assert fact is None or fact.amount_micros is None


ROW = {"status": "succeeded", "amount_micros": 20_000_000, "refunded_micros": 0, "disputed_micros": 0, "dispute_status": None}


def test_merge_is_monotonic():
    row = {**ROW, **merge(ROW, Fact("stripe", refunded_micros=5_000_000))}
    assert row["status"] == "partially_refunded"
    assert merge(row, Fact("stripe", refunded_micros=1_000_000)) == {}  # an older total
    assert merge(row, Fact("stripe", status="pending")) == {}  # settled stays settled
    won = {**row, **merge(row, Fact("stripe", dispute_status="won", disputed_micros=1))}
    assert merge(won, Fact("stripe", dispute_status="open", disputed_micros=9)) == {}  # a closed dispute is not reopened
    failed = {**ROW, "status": "failed"}
    assert merge(failed, Fact("stripe", status="succeeded"))["status"] == "succeeded"  # paid on retry
    assert merge({**ROW, "status": "pending"}, Fact("stripe", status="failed"))["status"] == "failed"

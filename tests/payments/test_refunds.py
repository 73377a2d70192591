"""Refunds and chargebacks take a wallet recharge back: Stripe `charge.refunded` (cumulative
amounts, partial, replayed, concurrent) and disputes, Mercado Pago `refunded`, `charged_back`
and partial refunds. Through the real webhooks, signed as the providers sign; the ledger audit
passes after each story."""

from __future__ import annotations

import threading

import pytest

from aibroker.billing.audit import verify
from aibroker.models import LedgerEntry, PaymentEvent, Wallet
from tests.fakes.mercadopago_api import sign as mp_sign
from tests.fakes.stripe_api import event, sign
from tests.support.accounts import MP_WEBHOOK_SECRET, WEBHOOK_SECRET, bearer, signup

URLS = {"successUrl": "https://app.example/ok", "cancelUrl": "https://app.example/cancel"}
CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "hello there broker"}]}


@pytest.fixture
def owner(broker):
    return signup(broker, "refunds@example.com", organization_name="Refunds Inc")


def _stripe(broker, payload: bytes):
    with broker.client() as http:
        response = http.post("/api/payments/webhook", content=payload,
                             headers={"content-type": "application/json", "stripe-signature": sign(payload, WEBHOOK_SECRET)})
    assert response.status_code == 200, response.text
    return response.json()


def _stripe_recharge(broker, owner, fake_stripe, amount="20.00") -> str:
    with broker.client() as http:
        created = http.post("/api/payments/checkout", json={**URLS, "amount": amount}, headers=bearer(owner["access_token"]))
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    _stripe(broker, event("checkout.session.completed", fake_stripe.completed(session_id), event_id=f"evt_paid_{session_id}"))
    return session_id


def _balance(broker, owner) -> int:
    broker.flush()
    return broker.rows(Wallet, Wallet.organization_id == owner["organization"]["id"])[0].balance_micros


def _reversals(broker) -> list:
    return sorted(broker.rows(LedgerEntry, LedgerEntry.kind == "adjustment"), key=lambda e: e.id)


def _ledger_is_sound(broker) -> None:
    broker.flush()
    report = verify(broker.db)
    assert report.ok, report.as_dict()


def test_full_refund_takes_the_whole_recharge_back(broker, owner, fake_stripe):
    session_id = _stripe_recharge(broker, owner, fake_stripe)
    assert _balance(broker, owner) == 20_000_000
    body = _stripe(broker, event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=2000), event_id="evt_ref_full"))
    assert any(a.startswith("reversed 20000000 micros") for a in body["actions"]), body
    assert _balance(broker, owner) == 0
    [entry] = _reversals(broker)
    assert entry.amount_micros == -20_000_000 and entry.payment_ref == f"stripe-refund:ch_{session_id[-6:]}"
    assert entry.idempotency_key == f"reversal:stripe:{session_id}:1"
    [stored] = broker.rows(PaymentEvent, PaymentEvent.external_id == "evt_ref_full")
    assert stored.type == "charge.refunded" and stored.payload["reversed_micros"] == 20_000_000
    assert stored.organization_id == owner["organization"]["id"]
    _ledger_is_sound(broker)


def test_partial_refunds_then_replays_reverse_exactly_the_recharge(broker, owner, fake_stripe):
    session_id = _stripe_recharge(broker, owner, fake_stripe)
    first = event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=500), event_id="evt_ref_1")
    _stripe(broker, first)
    assert _balance(broker, owner) == 15_000_000
    _stripe(broker, event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=2000), event_id="evt_ref_2"))
    assert _balance(broker, owner) == 0
    assert [e.amount_micros for e in _reversals(broker)] == [-5_000_000, -15_000_000]
    # The same event again (Stripe delivers at least once), and the older one under a new id
    # (out of order): neither reverses anything more.
    assert _stripe(broker, first)["duplicate"] is True
    late = _stripe(broker, event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=500), event_id="evt_ref_1b"))
    assert "nothing (more) to reverse" in " ".join(late["actions"])
    # A dispute on top of a full refund finds nothing left of the recharge to take.
    disputed = _stripe(broker, event("charge.dispute.created", fake_stripe.dispute(session_id), event_id="evt_dp_after_refund"))
    assert "nothing (more) to reverse" in " ".join(disputed["actions"])
    assert sum(e.amount_micros for e in _reversals(broker)) == -20_000_000
    assert _balance(broker, owner) == 0
    _ledger_is_sound(broker)


def test_concurrent_partial_refunds_never_over_reverse(broker, owner, fake_stripe):
    sessions = [_stripe_recharge(broker, owner, fake_stripe, amount="10.00") for _ in range(3)]
    payloads = []
    for n, session_id in enumerate(sessions):
        payloads += [event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=400), event_id=f"evt_c{n}a"),
                     event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=1000), event_id=f"evt_c{n}b")]
    barrier = threading.Barrier(len(payloads))
    statuses: list[int] = []

    def deliver(payload: bytes) -> None:
        barrier.wait()
        with broker.client() as http:
            statuses.append(http.post("/api/payments/webhook", content=payload,
                                      headers={"stripe-signature": sign(payload, WEBHOOK_SECRET)}).status_code)

    threads = [threading.Thread(target=deliver, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * len(payloads)
    assert _balance(broker, owner) == 0  # 3 x 10.00 credited, 3 x 10.00 refunded: not a micro more
    for session_id in sessions:
        taken = [e.amount_micros for e in _reversals(broker) if e.payment_ref == f"stripe-refund:ch_{session_id[-6:]}"]
        assert sum(taken) == -10_000_000, taken
    _ledger_is_sound(broker)


def test_refund_after_spending_leaves_a_negative_balance_and_402(broker, owner, fake_stripe):
    session_id = _stripe_recharge(broker, owner, fake_stripe)
    with broker.client() as http:
        spent = http.post("/v1/chat/completions", json=CHAT, headers=bearer(owner["access_token"]))
    assert spent.status_code == 200, spent.text
    cost = int(spent.headers["x-aibroker-cost-micros"])
    assert cost > 0 and _balance(broker, owner) == 20_000_000 - cost
    _stripe(broker, event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=2000), event_id="evt_ref_spent"))
    assert _balance(broker, owner) == -cost  # the customer spent money they no longer paid for
    with broker.client() as http:
        refused = http.post("/v1/chat/completions", json=CHAT, headers=bearer(owner["access_token"]))
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"]["type"] == "insufficient_balance"
    _ledger_is_sound(broker)


def test_dispute_takes_the_money_back_and_a_won_dispute_returns_it(broker, owner, fake_stripe):
    session_id = _stripe_recharge(broker, owner, fake_stripe)
    inquiry = _stripe(broker, event("charge.dispute.created", fake_stripe.dispute(session_id, status="warning_needs_response"), event_id="evt_inq"))
    assert "no funds withdrawn" in " ".join(inquiry["actions"]) and _balance(broker, owner) == 20_000_000
    created = event("charge.dispute.created", fake_stripe.dispute(session_id, amount=1200), event_id="evt_dp_1")
    _stripe(broker, created)
    assert _balance(broker, owner) == 8_000_000
    [entry] = _reversals(broker)
    assert entry.amount_micros == -12_000_000 and entry.payment_ref == f"stripe-dispute:du_{session_id[-6:]}"
    assert _stripe(broker, created)["duplicate"] is True
    reviewed = _stripe(broker, event("charge.dispute.updated", fake_stripe.dispute(session_id, amount=1200, status="under_review"), event_id="evt_dp_2"))
    assert reviewed["actions"] == ["event type not handled"]
    _stripe(broker, event("charge.dispute.closed", fake_stripe.dispute(session_id, amount=1200, status="won"), event_id="evt_dp_won"))
    assert _balance(broker, owner) == 20_000_000
    assert [e.amount_micros for e in _reversals(broker)] == [-12_000_000, 12_000_000]
    _ledger_is_sound(broker)


def test_won_dispute_delivered_before_its_creation_reverses_nothing(broker, owner, fake_stripe):
    session_id = _stripe_recharge(broker, owner, fake_stripe)
    _stripe(broker, event("charge.dispute.closed", fake_stripe.dispute(session_id, status="won"), event_id="evt_won_first"))
    late = _stripe(broker, event("charge.dispute.created", fake_stripe.dispute(session_id), event_id="evt_created_late"))
    assert "already won" in " ".join(late["actions"])
    assert _balance(broker, owner) == 20_000_000 and _reversals(broker) == []
    # Another dispute whose creation was never delivered: its lost closure still takes the money.
    other = {**fake_stripe.dispute(session_id, amount=700, status="lost"), "id": "du_other"}
    _stripe(broker, event("charge.dispute.closed", other, event_id="evt_lost_other"))
    assert _balance(broker, owner) == 20_000_000 - 7_000_000
    _ledger_is_sound(broker)


def test_refund_of_a_payment_that_credited_no_recharge_changes_nothing(broker, owner, fake_stripe):
    session_id = _stripe_recharge(broker, owner, fake_stripe)
    stranger = {**fake_stripe.charge(session_id, amount_refunded=2000), "id": "ch_other", "payment_intent": "pi_unknown"}
    body = _stripe(broker, event("charge.refunded", stranger, event_id="evt_ref_unknown"))
    assert body["actions"] == ["no wallet recharge was paid by pi_unknown: nothing reversed"]
    malformed = _stripe(broker, event("charge.refunded", {**stranger, "amount_refunded": "lots"}, event_id="evt_ref_bad"))
    assert "nothing reversed" in malformed["actions"][0]
    assert _balance(broker, owner) == 20_000_000 and _reversals(broker) == []
    assert {e.external_id for e in broker.rows(PaymentEvent, PaymentEvent.type == "charge.refunded")} == {"evt_ref_unknown", "evt_ref_bad"}


# -- Mercado Pago ------------------------------------------------------------------------


def _mp_notify(broker, payment_id: str, request_id: str):
    headers = {"x-request-id": request_id, "x-signature": mp_sign(data_id=payment_id, request_id=request_id, secret=MP_WEBHOOK_SECRET)}
    body = {"id": 1, "live_mode": False, "type": "payment", "action": "payment.updated", "api_version": "v1", "data": {"id": payment_id}}
    with broker.client() as http:
        response = http.post(f"/api/payments/mercadopago/webhook?data.id={payment_id}&type=payment", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _mp_recharge(broker, owner, fake_mp, amount="15.00", *, notify=True) -> str:
    with broker.client() as http:
        created = http.post("/api/payments/checkout", json={"provider": "mercadopago", **URLS, "amount": amount},
                            headers=bearer(owner["access_token"]))
    assert created.status_code == 201, created.text
    payment_id = fake_mp.pay(created.json()["id"])
    if notify:
        _mp_notify(broker, payment_id, "req-approved")
    return payment_id


@pytest.mark.parametrize("status", ["refunded", "charged_back"])
def test_mercadopago_refund_or_chargeback_takes_the_recharge_back_once(broker, owner, fake_mp, status):
    payment_id = _mp_recharge(broker, owner, fake_mp)
    assert _balance(broker, owner) == 15_000_000
    fake_mp.payments[payment_id].update(status=status, status_detail=status)
    if status == "refunded":
        fake_mp.payments[payment_id]["transaction_amount_refunded"] = 15.0
    body = _mp_notify(broker, payment_id, "req-reversed")
    assert any(a.startswith("reversed 15000000 micros") for a in body["actions"]), body
    assert _mp_notify(broker, payment_id, "req-again")["duplicate"] is True
    assert _balance(broker, owner) == 0
    [entry] = _reversals(broker)
    kind = "refund" if status == "refunded" else "chargeback"
    assert entry.amount_micros == -15_000_000 and entry.payment_ref == f"mercadopago-{kind}:{payment_id}"
    _ledger_is_sound(broker)


def test_mercadopago_partial_refund_then_full_refund_then_chargeback(broker, owner, fake_mp):
    payment_id = _mp_recharge(broker, owner, fake_mp)
    fake_mp.payments[payment_id].update(status_detail="partially_refunded", transaction_amount_refunded=4.5)  # still `approved`
    _mp_notify(broker, payment_id, "req-partial")
    assert _balance(broker, owner) == 10_500_000
    fake_mp.payments[payment_id].update(status="refunded", status_detail="refunded", transaction_amount_refunded=15.0)
    _mp_notify(broker, payment_id, "req-full")
    assert _balance(broker, owner) == 0
    fake_mp.payments[payment_id].update(status="charged_back", status_detail="settled")
    late = _mp_notify(broker, payment_id, "req-chargeback")  # nothing of the recharge is left to take
    assert "nothing (more) to reverse" in " ".join(late["actions"])
    assert [e.amount_micros for e in _reversals(broker)] == [-4_500_000, -10_500_000]
    assert {e.external_id for e in broker.rows(PaymentEvent)} == {
        f"{payment_id}:approved", f"{payment_id}:approved:refunded=4500000",
        f"{payment_id}:refunded:refunded=15000000", f"{payment_id}:charged_back:refunded=15000000"}
    _ledger_is_sound(broker)


def test_mercadopago_refund_of_a_never_credited_payment_reverses_nothing(broker, owner, fake_mp):
    payment_id = _mp_recharge(broker, owner, fake_mp, notify=False)  # the `approved` notification never came
    fake_mp.payments[payment_id].update(status="refunded", transaction_amount_refunded=15.0)
    body = _mp_notify(broker, payment_id, "req-refunded")
    assert body["actions"] == ["payment refunded but never credited: nothing reversed"]
    assert _balance(broker, owner) == 0 and _reversals(broker) == []

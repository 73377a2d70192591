"""The payments table (seed 002's `Payment`): one row per payment, written by the real
webhooks (signed as Stripe and Mercado Pago sign), refunds and disputes updating the payment
they reverse; `GET /api/payments`, `GET /api/payments/{id}` and the admin listing."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from aibroker.billing.batch import PostEntry
from aibroker.billing.service import post_entry_sync
from aibroker.models import LedgerEntry, Payment
from aibroker.payments import records
from tests.fakes.mercadopago_api import sign as mp_sign
from tests.fakes.stripe_api import event, sign
from tests.support.accounts import MP_WEBHOOK_SECRET, WEBHOOK_SECRET, bearer, signup

URLS = {"successUrl": "https://app.example/ok", "cancelUrl": "https://app.example/cancel"}


@pytest.fixture
def owner(broker):
    return signup(broker, "history@example.com", organization_name="History Inc")


def _stripe(broker, payload: bytes) -> dict:
    with broker.client() as http:
        response = http.post("/api/payments/webhook", content=payload, headers={"stripe-signature": sign(payload, WEBHOOK_SECRET)})
    assert response.status_code == 200, response.text
    return response.json()


def _checkout(broker, owner, **body) -> str:
    with broker.client() as http:
        created = http.post("/api/payments/checkout", json={**URLS, **body}, headers=bearer(owner["access_token"]))
    assert created.status_code == 201, created.text
    return created.json()["id"]


def _stripe_recharge(broker, owner, fake_stripe, amount="20.00") -> str:
    session_id = _checkout(broker, owner, amount=amount)
    _stripe(broker, event("checkout.session.completed", fake_stripe.completed(session_id), event_id=f"evt_paid_{session_id}"))
    return session_id


def _payments(broker, token: str, **params) -> dict:
    with broker.client() as http:
        response = http.get("/api/payments", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def _one(broker, token: str) -> dict:
    [payment] = _payments(broker, token)["data"]
    with broker.client() as http:
        detail = http.get(f"/api/payments/{payment['id']}", headers=bearer(token))
    assert detail.status_code == 200, detail.text
    return detail.json()


def _mp_notify(broker, payment_id: str, request_id: str) -> dict:
    headers = {"x-request-id": request_id, "x-signature": mp_sign(data_id=payment_id, request_id=request_id, secret=MP_WEBHOOK_SECRET)}
    body = {"type": "payment", "action": "payment.updated", "data": {"id": payment_id}}
    with broker.client() as http:
        response = http.post(f"/api/payments/mercadopago/webhook?data.id={payment_id}&type=payment", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_stripe_recharge_is_one_succeeded_payment_with_its_credit_and_code(broker, owner, fake_stripe):
    token = owner["access_token"]
    assert _payments(broker, token) == {"object": "list", "data": [], "has_more": False, "next_cursor": None}
    session_id = _stripe_recharge(broker, owner, fake_stripe)
    # Stripe delivers again, and another event names the same session: still one payment.
    _stripe(broker, event("checkout.session.async_payment_succeeded", fake_stripe.completed(session_id), event_id="evt_again"))
    payment = _one(broker, token)
    assert {k: payment[k] for k in ("provider", "kind", "amount_micros", "currency", "status", "external_id", "refunded_micros")} == {
        "provider": "stripe", "kind": "recharge", "amount_micros": 20_000_000, "currency": "USD", "status": "succeeded",
        "external_id": session_id, "refunded_micros": 0}
    assert payment["created_at"].endswith("+00:00") and payment["organization_id"] == owner["organization"]["id"]
    assert payment["organization_code_id"] and "code" not in payment  # the code it issued, by id: never the credential
    [credit] = payment["ledger_entries"]
    assert (credit["kind"], credit["amount_micros"], credit["reference"]) == ("recharge", 20_000_000, f"pi_{session_id[-6:]}")


def test_refunds_and_disputes_update_the_payment_they_reverse(broker, owner, fake_stripe):
    token = owner["access_token"]
    session_id = _stripe_recharge(broker, owner, fake_stripe)
    _stripe(broker, event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=500), event_id="evt_r1"))
    payment = _one(broker, token)
    assert (payment["status"], payment["refunded_micros"]) == ("partially_refunded", 5_000_000)
    assert [e["amount_micros"] for e in payment["ledger_entries"]] == [20_000_000, -5_000_000]
    # A dispute on the rest: disputed; won, it is back to partially refunded.
    _stripe(broker, event("charge.dispute.created", fake_stripe.dispute(session_id, amount=1500), event_id="evt_d1"))
    payment = _one(broker, token)
    assert (payment["status"], payment["dispute_status"], payment["disputed_micros"]) == ("disputed", "open", 15_000_000)
    _stripe(broker, event("charge.dispute.closed", fake_stripe.dispute(session_id, amount=1500, status="won"), event_id="evt_d2"))
    payment = _one(broker, token)
    assert (payment["status"], payment["dispute_status"]) == ("partially_refunded", "won")
    # An older refund total delivered late never lowers it; the full refund makes it refunded.
    _stripe(broker, event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=100), event_id="evt_r0"))
    assert _one(broker, token)["refunded_micros"] == 5_000_000
    _stripe(broker, event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=2000), event_id="evt_r2"))
    payment = _one(broker, token)
    assert (payment["status"], payment["refunded_micros"]) == ("refunded", 20_000_000)
    assert sum(e["amount_micros"] for e in payment["ledger_entries"]) == 0


def test_a_payment_row_commits_with_its_ledger_credit_or_not_at_all(broker, owner):
    org_id = owner["organization"]["id"]
    hook = records.recharge_hook(provider="stripe", external_id="cs_atomic", organization_id=org_id, amount_micros=3_000_000,
                                 ledger_key="stripe:cs_atomic", payment_ref="pi_atomic")

    def failing(conn, posted):
        hook(conn, posted)
        raise RuntimeError("the transaction fails after both rows were written")

    with pytest.raises(RuntimeError):
        post_entry_sync(broker.db, PostEntry(org_id, "recharge", 3_000_000, idempotency_key="stripe:cs_atomic", after=failing))
    with broker.db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Payment)) == 0
        assert conn.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.idempotency_key == "stripe:cs_atomic")) == 0
    post_entry_sync(broker.db, PostEntry(org_id, "recharge", 3_000_000, idempotency_key="stripe:cs_atomic", after=hook))
    [payment] = broker.rows(Payment)
    assert (payment.ledger_key, payment.amount_micros, payment.status) == ("stripe:cs_atomic", 3_000_000, "succeeded")


def test_a_subscription_is_one_payment_per_invoice(broker, owner, fake_stripe):
    token, org_id = owner["access_token"], owner["organization"]["id"]
    session_id = _checkout(broker, owner, plan="STARTER")
    completed = fake_stripe.completed(session_id)
    _stripe(broker, event("checkout.session.completed", completed, event_id="evt_sub_paid"))
    invoice = {"id": completed["invoice"], "object": "invoice", "customer": completed["customer"], "status": "paid",
               "amount_paid": completed["amount_total"], "currency": "usd",
               "parent": {"subscription_details": {"subscription": completed["subscription"], "metadata": {"plan": "starter", "organization_id": org_id}}},
               "lines": {"data": [{"period": {"start": int(time.time()), "end": int(time.time()) + 30 * 86400}}]}}
    _stripe(broker, event("invoice.paid", invoice, event_id="evt_in_1"))
    renewal = {**invoice, "id": "in_renewal", "amount_paid": completed["amount_total"]}
    _stripe(broker, event("invoice.payment_failed", {**renewal, "amount_due": completed["amount_total"], "amount_paid": 0}, event_id="evt_in_2"))
    data = _payments(broker, token)["data"]
    assert [(p["external_id"], p["kind"], p["status"], p["plan"]) for p in data] == [
        ("in_renewal", "subscription", "failed", "STARTER"), (completed["invoice"], "subscription", "succeeded", "STARTER")]
    assert data[1]["amount_micros"] == completed["amount_total"] * 10_000
    # The failed renewal is paid on retry: the same payment succeeds.
    _stripe(broker, event("invoice.paid", {**renewal, "payment_intent": "pi_renewal"}, event_id="evt_in_3"))
    assert [p["status"] for p in _payments(broker, token)["data"]] == ["succeeded", "succeeded"]
    # Its refund marks the plan payment refunded; plan payments take nothing back from the wallet.
    charge = {"id": "ch_renewal", "object": "charge", "payment_intent": "pi_renewal", "amount_refunded": completed["amount_total"]}
    refunded = _stripe(broker, event("charge.refunded", charge, event_id="evt_in_refund"))
    assert "nothing reversed" in " ".join(refunded["actions"])
    assert [p["status"] for p in _payments(broker, token)["data"]] == ["refunded", "succeeded"]
    assert broker.rows(LedgerEntry, LedgerEntry.kind == "adjustment") == []


def test_mercadopago_payments_pending_then_approved_then_refunded_or_charged_back(broker, owner, fake_mp):
    token = owner["access_token"]
    ids = []
    for amount in ("15.00", "8.00"):
        with broker.client() as http:
            created = http.post("/api/payments/checkout", json={"provider": "mercadopago", **URLS, "amount": amount}, headers=bearer(token))
        assert created.status_code == 201, created.text
        ids.append(fake_mp.pay(created.json()["id"], status="in_process"))
    first, second = ids
    _mp_notify(broker, first, "req-pending")
    [pending] = _payments(broker, token)["data"]
    assert (pending["provider"], pending["status"], pending["amount_micros"], pending["kind"]) == ("mercadopago", "pending", 15_000_000, "recharge")
    fake_mp.set_status(first, "approved")
    _mp_notify(broker, first, "req-approved")
    fake_mp.set_status(second, "approved")
    _mp_notify(broker, second, "req-approved-2")
    fake_mp.payments[first].update(status="refunded", transaction_amount_refunded=15.0)
    _mp_notify(broker, first, "req-refunded")
    fake_mp.set_status(second, "charged_back")
    _mp_notify(broker, second, "req-chargeback")
    by_id = {p["external_id"]: p for p in _payments(broker, token)["data"]}
    assert (by_id[first]["status"], by_id[first]["refunded_micros"]) == ("refunded", 15_000_000)
    assert (by_id[second]["status"], by_id[second]["dispute_status"]) == ("disputed", "lost")
    with broker.client() as http:
        detail = http.get(f"/api/payments/{by_id[first]['id']}", headers=bearer(token)).json()
    assert [e["amount_micros"] for e in detail["ledger_entries"]] == [15_000_000, -15_000_000]


def test_history_is_newest_first_with_cursor_pages(broker, owner, fake_stripe):
    token = owner["access_token"]
    sessions = [_stripe_recharge(broker, owner, fake_stripe, amount=f"{n}.00") for n in (5, 6, 7)]
    first = _payments(broker, token, limit=2)
    assert [p["external_id"] for p in first["data"]] == sessions[::-1][:2] and first["has_more"] is True
    rest = _payments(broker, token, limit=2, cursor=first["next_cursor"])
    assert [p["external_id"] for p in rest["data"]] == sessions[:1] and rest["next_cursor"] is None
    with broker.client() as http:
        for bad in ({"limit": 0}, {"limit": 100000}, {"limit": "x"}, {"cursor": "c" * 200}):
            assert http.get("/api/payments", params=bad, headers=bearer(token)).status_code == 422, bad


def test_roles_isolation_and_the_admin_listing(broker, owner, fake_stripe, fake_mp):
    _stripe_recharge(broker, owner, fake_stripe)
    other = signup(broker, "other-payer@example.com", organization_name="Other Payer")
    _stripe_recharge(broker, other, fake_stripe, amount="9.00")
    [mine] = _payments(broker, owner["access_token"])["data"]
    [theirs] = _payments(broker, other["access_token"])["data"]
    with broker.client() as http:
        # Another organization's payment: 404, as if it did not exist.
        stranger = http.get(f"/api/payments/{theirs['id']}", headers=bearer(owner["access_token"]))
        assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "payment_not_found"
        assert http.get("/api/payments/pay_nonexistent", headers=bearer(owner["access_token"])).status_code == 404
        assert http.get("/api/admin/payments", headers=bearer(owner["access_token"])).status_code == 403
        assert http.get("/api/admin/payments").status_code == 401
    with broker.admin() as admin:
        everything = admin.get("/api/admin/payments").json()["data"]
        assert {p["id"] for p in everything} == {mine["id"], theirs["id"]}
        only = admin.get("/api/admin/payments", params={"organization_id": other["organization"]["id"]}).json()["data"]
        assert [p["id"] for p in only] == [theirs["id"]]
        assert admin.get("/api/admin/payments", params={"provider": "mercadopago"}).json()["data"] == []
        assert len(admin.get("/api/admin/payments", params={"status": "succeeded", "kind": "recharge"}).json()["data"]) == 2
        assert admin.get("/api/admin/payments", params={"status": "bogus"}).status_code == 422
        # The platform acting for one organization reads its history too.
        acting = admin.get("/api/payments", headers={"x-organization-id": other["organization"]["id"]}).json()["data"]
        assert [p["id"] for p in acting] == [theirs["id"]]

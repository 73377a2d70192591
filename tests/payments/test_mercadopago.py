"""Mercado Pago: Checkout Pro preference through the official SDK (pointed at a fake API),
notifications signed over the documented manifest, the payment read back and applied once."""

from __future__ import annotations

import pytest

from aibroker.models import LedgerEntry, Organization, PaymentEvent, Wallet
from tests.fakes.mercadopago_api import sign
from tests.support.accounts import MP_WEBHOOK_SECRET, bearer, signup

URLS = {"successUrl": "https://app.example/mp/ok", "cancelUrl": "https://app.example/mp/fail"}


@pytest.fixture
def owner(broker):
    return signup(broker, "pagador@example.com", organization_name="Bogotá SAS")


def _preference(broker, owner, **body):
    with broker.client() as http:
        response = http.post("/api/payments/checkout", json={"provider": "mercadopago", **URLS, **body}, headers=bearer(owner["access_token"]))
    assert response.status_code == 201, response.text
    return response.json()


def _notify(broker, payment_id: str, *, secret: str = MP_WEBHOOK_SECRET, request_id: str = "req-1", signature: str | None = None):
    headers = {"x-request-id": request_id, "x-signature": signature or sign(data_id=payment_id, request_id=request_id, secret=secret)}
    body = {"id": 123, "live_mode": False, "type": "payment", "action": "payment.updated", "api_version": "v1", "data": {"id": payment_id}}
    with broker.client() as http:
        return http.post(f"/api/payments/mercadopago/webhook?data.id={payment_id}&type=payment", json=body, headers=headers)


def _balance(broker, org_id):
    broker.flush()
    return broker.rows(Wallet, Wallet.organization_id == org_id)[0].balance_micros


def test_recharge_preference_then_signed_notification_credits_once(broker, owner, fake_mp):
    org_id = owner["organization"]["id"]
    created = _preference(broker, owner, amount="15.00")
    assert created["url"].startswith("https://www.mercadopago.test/")
    pref = fake_mp.preferences[created["id"]]
    assert pref["items"][0]["unit_price"] == 15.0 and pref["metadata"]["kind"] == "wallet_recharge"
    assert pref["notification_url"].endswith("/api/payments/mercadopago/webhook?source_news=webhooks")
    payment_id = fake_mp.pay(created["id"], status="pending")
    pending = _notify(broker, payment_id)
    assert pending.status_code == 200 and _balance(broker, org_id) == 0
    fake_mp.set_status(payment_id, "approved")
    approved = _notify(broker, payment_id, request_id="req-2")
    assert approved.status_code == 200, approved.text
    replay = _notify(broker, payment_id, request_id="req-3")
    assert replay.json()["duplicate"] is True
    assert _balance(broker, org_id) == 15_000_000
    [credit] = broker.rows(LedgerEntry, LedgerEntry.kind == "recharge")
    assert credit.idempotency_key == f"mercadopago:{payment_id}"
    assert {e.external_id for e in broker.rows(PaymentEvent)} == {f"{payment_id}:pending", f"{payment_id}:approved"}
    assert any(r.path == f"/v1/payments/{payment_id}" for r in fake_mp.requests)


def test_plan_payment_activates_the_plan(broker, owner, fake_mp):
    created = _preference(broker, owner, plan="starter")
    payment_id = fake_mp.pay(created["id"])
    assert _notify(broker, payment_id).status_code == 200
    [org] = broker.rows(Organization, Organization.id == owner["organization"]["id"])
    assert (org.plan, org.status) == ("starter", "active")


def test_forged_and_unsigned_notifications_are_rejected_and_not_stored(broker, owner, fake_mp):
    created = _preference(broker, owner, amount="15.00")
    payment_id = fake_mp.pay(created["id"])
    forged = _notify(broker, payment_id, secret="not-the-secret")
    wrong_id = _notify(broker, payment_id, signature=sign(data_id="1", request_id="req-1", secret=MP_WEBHOOK_SECRET))
    with broker.client() as http:
        unsigned = http.post(f"/api/payments/mercadopago/webhook?data.id={payment_id}&type=payment", json={"type": "payment", "data": {"id": payment_id}})
    for response in (forged, wrong_id, unsigned):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["type"] == "invalid_signature"
    assert broker.rows(PaymentEvent) == []
    assert _balance(broker, owner["organization"]["id"]) == 0
    assert not any(r.path.startswith("/v1/payments/") for r in fake_mp.requests)  # never fetched


def test_amount_mismatch_is_not_credited(broker, owner, fake_mp):
    created = _preference(broker, owner, amount="15.00")
    payment_id = fake_mp.pay(created["id"], amount=1.0)
    response = _notify(broker, payment_id)
    assert response.status_code == 200 and "does not match" in " ".join(response.json()["actions"])
    assert _balance(broker, owner["organization"]["id"]) == 0

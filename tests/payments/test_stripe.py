"""Stripe: checkout through the official SDK against a fake Stripe API, and webhooks signed
exactly as Stripe signs them: applied once, replayed, reordered, stale and forged."""

from __future__ import annotations

import time

import pytest

from aibroker.models import LedgerEntry, Organization, OrganizationCode, PaymentEvent, Subscription, Wallet
from tests.fakes.stripe_api import event, sign
from tests.support.accounts import WEBHOOK_SECRET, bearer, signup

URLS = {"successUrl": "https://app.example/ok?session_id={CHECKOUT_SESSION_ID}", "cancelUrl": "https://app.example/cancel"}


@pytest.fixture
def owner(broker):
    return signup(broker, "payer@example.com", organization_name="Payer Inc")


def _post_event(broker, payload: bytes, signature: str | None = None):
    headers = {"content-type": "application/json", "stripe-signature": signature or sign(payload, WEBHOOK_SECRET)}
    with broker.client() as http:
        return http.post("/api/payments/webhook", content=payload, headers=headers)


def _checkout(broker, owner, **body):
    with broker.client() as http:
        return http.post("/api/payments/checkout", json={**URLS, **body}, headers=bearer(owner["access_token"]))


def _balance(broker, org_id):
    return broker.rows(Wallet, Wallet.organization_id == org_id)[0].balance_micros


def test_recharge_checkout_is_form_encoded_by_the_sdk(broker, owner, fake_stripe):
    response = _checkout(broker, owner, amount="20.00")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["url"].startswith("https://checkout.stripe.test/") and body["id"].startswith("cs_test")
    [form] = fake_stripe.form_bodies
    org_id = owner["organization"]["id"]
    assert form["mode"] == "payment" and form["client_reference_id"] == org_id
    assert form["metadata"] == {"kind": "wallet_recharge", "amount_micros": "20000000", "organization_id": org_id}
    assert form["line_items"][0]["price_data"]["unit_amount"] == "2000"
    [request] = [r for r in fake_stripe.requests if r.path == "/v1/checkout/sessions"]
    assert request.headers.get("idempotency-key")


def test_subscription_checkout_carries_plan_metadata(broker, owner, fake_stripe):
    response = _checkout(broker, owner, plan="professional")
    assert response.status_code == 201, response.text
    [form] = fake_stripe.form_bodies
    assert form["mode"] == "subscription" and form["metadata"]["kind"] == "subscription" and form["metadata"]["plan"] == "professional"
    assert form["subscription_data"]["metadata"]["plan"] == "professional"
    assert form["line_items"][0]["price_data"]["recurring"]["interval"] == "month"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"plan": "GALACTIC"}, "plan"),
        ({"plan": "FREE"}, "plan"),
        ({"amount": "20", "successUrl": "ftp://x.example/ok"}, "successUrl"),
        ({"amount": "20", "cancelUrl": "/relative"}, "cancelUrl"),
        ({"amount": "0.001"}, "amount"),
        ({"amount": "0.50"}, "amount"),
        ({}, "plan"),
        ({"plan": "STARTER", "amount": "5"}, "plan"),
    ],
)
def test_bad_checkout_input_is_a_clear_400(broker, owner, fake_stripe, body, param):
    response = _checkout(broker, owner, **body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert fake_stripe.form_bodies == []


def test_recharge_webhook_credits_once_issues_code_and_activates(broker, owner, fake_stripe):
    org_id = owner["organization"]["id"]
    session_id = _checkout(broker, owner, amount="20.00").json()["id"]
    payload = event("checkout.session.completed", fake_stripe.completed(session_id), event_id="evt_recharge_1")
    first = _post_event(broker, payload)
    assert first.status_code == 200, first.text
    assert first.json()["organization_code_issued"] is True
    replay = _post_event(broker, payload)  # Stripe delivers at least once
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    # Another event about the same session (a different id) still cannot credit twice.
    again = _post_event(broker, event("checkout.session.async_payment_succeeded", fake_stripe.completed(session_id), event_id="evt_recharge_2"))
    assert again.status_code == 200
    broker.flush()
    assert _balance(broker, org_id) == 20_000_000
    [credit] = broker.rows(LedgerEntry, LedgerEntry.kind == "recharge")
    assert credit.idempotency_key == f"stripe:{session_id}" and credit.amount_micros == 20_000_000
    assert len(broker.rows(PaymentEvent, PaymentEvent.provider == "stripe")) == 2
    [code] = broker.rows(OrganizationCode, OrganizationCode.organization_id == org_id)
    assert len(code.code) == 10
    [org] = broker.rows(Organization, Organization.id == org_id)
    assert org.status == "active"


def test_subscription_lifecycle_with_reordered_events(broker, owner, fake_stripe):
    org_id = owner["organization"]["id"]
    session_id = _checkout(broker, owner, plan="STARTER").json()["id"]
    completed = fake_stripe.completed(session_id)
    now = int(time.time())
    assert _post_event(broker, event("checkout.session.completed", completed, event_id="evt_s1", created=now - 100)).status_code == 200
    [org] = broker.rows(Organization, Organization.id == org_id)
    assert (org.plan, org.status) == ("starter", "active")
    sub_object = {"id": completed["subscription"], "object": "subscription", "status": "active", "customer": completed["customer"],
                  "metadata": {"kind": "subscription", "plan": "professional", "organization_id": org_id},
                  "items": {"data": [{"current_period_end": now + 30 * 86400}]}}
    deleted = {**sub_object, "status": "canceled"}
    # Delivered out of order: the deletion (newer) first, then an older upgrade.
    assert _post_event(broker, event("customer.subscription.deleted", deleted, event_id="evt_s3", created=now - 10)).status_code == 200
    stale = _post_event(broker, event("customer.subscription.updated", sub_object, event_id="evt_s2", created=now - 50))
    assert stale.status_code == 200 and "stale subscription event ignored" in stale.json()["actions"]
    [org] = broker.rows(Organization, Organization.id == org_id)
    [sub] = broker.rows(Subscription, Subscription.organization_id == org_id)
    assert org.plan == "free" and sub.status == "canceled"
    # A renewal paid later (newest) reactivates through the subscription id alone.
    invoice = {"id": "in_1", "object": "invoice", "customer": completed["customer"], "status": "paid",
               "parent": {"subscription_details": {"subscription": completed["subscription"], "metadata": {"plan": "professional", "organization_id": org_id}}},
               "lines": {"data": [{"period": {"start": now, "end": now + 30 * 86400}}]}}
    assert _post_event(broker, event("invoice.paid", invoice, event_id="evt_s4", created=now)).status_code == 200
    [org] = broker.rows(Organization, Organization.id == org_id)
    [sub] = broker.rows(Subscription, Subscription.organization_id == org_id)
    assert (org.plan, sub.status, sub.current_period_end is not None) == ("professional", "active", True)
    with broker.client() as http:
        view = http.get(f"/api/payments/subscription/{org_id}", headers=bearer(owner["access_token"]))
    assert view.status_code == 200, view.text
    assert view.json()["plan"] == "PROFESSIONAL" and view.json()["limits"]["max_users"] == 20
    assert len(view.json()["organization_code"]) == 10


def test_stale_forged_and_unsigned_events_are_rejected_and_not_stored(broker, owner, fake_stripe):
    session_id = _checkout(broker, owner, amount="20.00").json()["id"]
    payload = event("checkout.session.completed", fake_stripe.completed(session_id), event_id="evt_bad")
    stale = _post_event(broker, payload, sign(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 301))
    forged = _post_event(broker, payload, sign(payload, "whsec_someone_else"))
    tampered = _post_event(broker, payload.replace(b"20000000", b"90000000"), sign(payload, WEBHOOK_SECRET))
    with broker.client() as http:
        unsigned = http.post("/api/payments/webhook", content=payload, headers={"content-type": "application/json"})
    for response in (stale, forged, tampered, unsigned):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["type"] == "invalid_signature"
    assert broker.rows(PaymentEvent) == [] and broker.rows(OrganizationCode) == []
    broker.flush()
    assert _balance(broker, owner["organization"]["id"]) == 0


def test_any_of_several_v1_signatures_is_accepted(broker, owner, fake_stripe):
    session_id = _checkout(broker, owner, amount="5.00").json()["id"]
    payload = event("checkout.session.completed", fake_stripe.completed(session_id), event_id="evt_roll")
    rolled = sign(payload, WEBHOOK_SECRET, extra_v1=("00" * 32,))  # an old secret's signature first
    assert _post_event(broker, payload, rolled).status_code == 200
    broker.flush()
    assert _balance(broker, owner["organization"]["id"]) == 5_000_000

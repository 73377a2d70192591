"""Organization codes (validate, create-from-code, header auth with its rate limit) and the
end-to-end path: signup -> checkout -> webhook -> code -> wallet credited -> AI call charged."""

from __future__ import annotations

import openai
from sqlalchemy import text

from aibroker.models import LedgerEntry, Membership, OrganizationCode, UsageRecord, Wallet
from tests.fakes.stripe_api import event, sign
from tests.support.accounts import WEBHOOK_SECRET, bearer, signup

URLS = {"successUrl": "https://app.example/ok", "cancelUrl": "https://app.example/cancel"}


def _pay(broker, fake_stripe, owner, amount="20.00", event_id="evt_pay") -> str:
    with broker.client() as http:
        session = http.post("/api/payments/checkout", json={**URLS, "amount": amount}, headers=bearer(owner["access_token"]))
        assert session.status_code == 201, session.text
        payload = event("checkout.session.completed", fake_stripe.completed(session.json()["id"]), event_id=event_id)
        hook = http.post("/api/payments/webhook", content=payload, headers={"stripe-signature": sign(payload, WEBHOOK_SECRET)})
        assert hook.status_code == 200, hook.text
    [code] = broker.rows(OrganizationCode, OrganizationCode.organization_id == owner["organization"]["id"])
    return code.code


def test_end_to_end_signup_pay_code_credit_and_charged_ai_call(broker, fake_stripe):
    owner = signup(broker, "e2e@example.com", organization_name="E2E Ltd")
    org_id = owner["organization"]["id"]
    code = _pay(broker, fake_stripe, owner)
    assert len(code) == 10
    broker.flush()
    assert broker.rows(Wallet, Wallet.organization_id == org_id)[0].balance_micros == 20_000_000
    # The user's JWT is accepted by the OpenAI-compatible API, with the OWNER role applied.
    client = openai.OpenAI(base_url=broker.url + "/v1", api_key=owner["access_token"], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="mock-chat", messages=[{"role": "user", "content": "hello there broker"}])
    assert raw.parse().choices[0].message.content.startswith("Mock reply")
    cost = int(raw.headers["x-aibroker-cost-micros"])
    broker.flush()
    [usage] = broker.rows(UsageRecord, UsageRecord.organization_id == org_id)
    [debit] = broker.rows(LedgerEntry, LedgerEntry.usage_record_id == usage.id)
    assert cost > 0 and debit.amount_micros == -cost
    assert broker.rows(Wallet, Wallet.organization_id == org_id)[0].balance_micros == 20_000_000 - cost
    # And an API key created by the user works the same way.
    with broker.client() as http:
        key = http.post("/api/keys", json={"name": "app"}, headers=bearer(owner["access_token"])).json()["key"]
    keyed = openai.OpenAI(base_url=broker.url + "/v1", api_key=key, max_retries=0)
    assert keyed.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "hi"}]).choices


def test_validate_and_create_from_code_once(broker, fake_stripe):
    owner = signup(broker, "buyer@example.com", organization_name="Bought")
    code = _pay(broker, fake_stripe, owner)
    with broker.client() as http:
        valid = http.post("/api/organizations/validate-code", json={"code": code.lower()})
        assert valid.status_code == 200 and valid.json()["organization"]["id"] == owner["organization"]["id"]
        assert http.post("/api/organizations/validate-code", json={"code": "ZZZZZZZZZZ"}).status_code == 404
        assert http.post("/api/organizations/validate-code", json={"code": "short"}).status_code == 400
        # The organization has its owner already: its code never adds another (issue 18).
        with broker.db.begin() as conn:
            conn.execute(text("UPDATE organizations SET plan = 'starter' WHERE id = :id"), {"id": owner["organization"]["id"]})
        taken = http.post("/api/organizations/create-from-code", json={"code": code, "email": "new@example.com", "password": "brand-new-pass-9"})
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "organization_has_members"
        # An organization the platform set up (no members yet): its code makes the first owner, once.
        empty = broker.create_org("Set up")
        with broker.admin() as admin:
            code = admin.post(f"/api/organizations/{empty['organization_id']}/code/rotate",
                              headers={"x-organization-id": empty["organization_id"]}).json()["code"]
        made = http.post("/api/organizations/create-from-code", json={"code": code, "email": "new@example.com", "password": "brand-new-pass-9"})
        assert made.status_code == 201, made.text
        used = http.post("/api/organizations/create-from-code", json={"code": code, "email": "other@example.com", "password": "brand-new-pass-9"})
    assert used.status_code == 409
    assert [m.role for m in broker.rows(Membership, Membership.organization_id == owner["organization"]["id"])] == ["OWNER"]
    assert [m.role for m in broker.rows(Membership, Membership.organization_id == empty["organization_id"])] == ["OWNER"]


def test_code_header_auth_only_where_allowed_never_admin_and_rate_limited(broker, fake_stripe, monkeypatch):
    owner = signup(broker, "coder@example.com", organization_name="Coded")
    org_id = owner["organization"]["id"]
    code = _pay(broker, fake_stripe, owner)
    chat = {"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]}
    with broker.client() as http:
        off = http.post("/v1/chat/completions", json=chat, headers={"x-organization-code": code})
        assert off.status_code == 403 and off.json()["error"]["code"] == "code_auth_disabled"
        enabled = http.patch(f"/api/organizations/{org_id}", json={"allow_code_auth": True}, headers=bearer(owner["access_token"]))
        assert enabled.status_code == 200 and enabled.json()["allow_code_auth"] is True
        ok = http.post("/v1/chat/completions", json=chat, headers={"x-organization-code": code, "x-user-id": owner["user"]["id"]})
        assert ok.status_code == 200, ok.text
        stranger = http.post("/v1/chat/completions", json=chat, headers={"x-organization-code": code, "x-user-id": "usr_nobody"})
        assert stranger.status_code == 403
        # Never administrative: keys, billing, members.
        for method, path in (("POST", "/api/keys"), ("GET", f"/api/organizations/{org_id}/members"),
                             ("POST", "/api/payments/checkout"), ("PATCH", f"/api/organizations/{org_id}")):
            denied = http.request(method, path, json={**URLS, "amount": "5", "name": "x"}, headers={"x-organization-code": code})
            assert denied.status_code == 403, (path, denied.text)
        # Its own rate limit (60/minute per code by default): the 61st request in the window is refused.
        statuses = [http.get("/api/ai/usage", headers={"x-organization-code": code}).status_code for _ in range(60)]
    assert statuses.count(429) >= 1 and statuses[0] == 200
    assert 429 in statuses

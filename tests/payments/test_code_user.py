"""Seed 002's `x-user-id` next to `x-organization-code`: it must name a member of the
organization (403 `not_a_member` otherwise), and the usage records carry that user."""

from __future__ import annotations

from aibroker.models import OrganizationCode, UsageRecord
from tests.fakes.stripe_api import event, sign
from tests.support.accounts import WEBHOOK_SECRET, bearer, signup

URLS = {"successUrl": "https://app.example/ok", "cancelUrl": "https://app.example/cancel"}
CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "hola"}]}


def _paid_code(broker, fake_stripe, owner) -> str:
    with broker.client() as http:
        session = http.post("/api/payments/checkout", json={**URLS, "amount": "20.00"}, headers=bearer(owner["access_token"]))
        payload = event("checkout.session.completed", fake_stripe.completed(session.json()["id"]), event_id="evt_code_user")
        assert http.post("/api/payments/webhook", content=payload, headers={"stripe-signature": sign(payload, WEBHOOK_SECRET)}).status_code == 200
        enabled = http.patch(f"/api/organizations/{owner['organization']['id']}", json={"allow_code_auth": True}, headers=bearer(owner["access_token"]))
        assert enabled.status_code == 200
    [code] = broker.rows(OrganizationCode, OrganizationCode.organization_id == owner["organization"]["id"])
    return code.code


def test_usage_under_a_code_is_attributed_to_the_member_named_by_x_user_id(broker, fake_stripe):
    owner = signup(broker, "code-user@example.com", organization_name="Code User")
    stranger = signup(broker, "code-stranger@example.com", organization_name="Stranger Org")
    code = _paid_code(broker, fake_stripe, owner)
    me = owner["user"]["id"]
    with broker.client() as http:
        chat = http.post("/v1/chat/completions", json=CHAT, headers={"x-organization-code": code, "x-user-id": me})
        assert chat.status_code == 200, chat.text
        # A body `user` (an end-user label) does not replace the member the code acts for.
        labelled = http.post("/v1/chat/completions", json={**CHAT, "user": "someone-else"}, headers={"x-organization-code": code, "x-user-id": me})
        assert labelled.status_code == 200, labelled.text
        broker_call = http.post("/api/ai/broker", json={"prompt": "hola", "userId": "usr_forged"},
                                headers={"x-organization-code": code, "x-user-id": me})
        assert broker_call.status_code == 200, broker_call.text
        anonymous = http.post("/v1/chat/completions", json=CHAT, headers={"x-organization-code": code})
        assert anonymous.status_code == 200, anonymous.text
        for who in (stranger["user"]["id"], "usr_nobody"):
            refused = http.post("/v1/chat/completions", json=CHAT, headers={"x-organization-code": code, "x-user-id": who})
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_a_member", refused.text
    broker.flush()
    rows = sorted(broker.rows(UsageRecord, UsageRecord.organization_id == owner["organization"]["id"]), key=lambda r: r.created_at)
    assert [r.user_id for r in rows] == [me, me, me, None]

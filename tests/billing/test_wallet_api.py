"""Admin and tenant wallet routes: top-up / refund / adjustment (idempotent), ledger pages
and CSV, settings, margins, and isolation between organizations."""

from __future__ import annotations

import csv
import io

import pytest

from aibroker.models import LedgerEntry
from tests.billing.conftest import wallet_row

CREDIT = 10_000_000


def test_topup_and_refund_are_idempotent_by_key(broker, org, admin):
    slug = org["slug"]
    first = admin.post(f"/api/admin/wallets/{slug}/topup", json={"amount_usd": "2.5", "idempotency_key": "pay-1", "payment_ref": "pi_1"})
    assert first.status_code == 200, first.text
    again = admin.post(f"/api/admin/wallets/{slug}/topup", json={"amount_usd": "2.5", "idempotency_key": "pay-1", "payment_ref": "pi_1"})
    assert again.status_code == 200
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert first.json()["transaction"] == again.json()["transaction"]
    assert first.json()["transaction"]["balance_after_micros"] == CREDIT + 2_500_000
    # The header form of the key works the same way.
    refund = {"amount_micros": 300_000, "description": "failed job"}
    r1 = admin.post(f"/api/admin/wallets/{org['organization_id']}/refund", json=refund, headers={"idempotency-key": "ref-9"})
    r2 = admin.post(f"/api/admin/wallets/{org['organization_id']}/refund", json=refund, headers={"idempotency-key": "ref-9"})
    assert r1.status_code == r2.status_code == 200
    assert r2.json()["duplicate"] is True
    wallet = wallet_row(broker, org["organization_id"])
    assert wallet.balance_micros == CREDIT + 2_500_000 + 300_000
    kinds = sorted(e.kind for e in broker.rows(LedgerEntry, LedgerEntry.organization_id == org["organization_id"]))
    assert kinds == ["recharge", "recharge", "refund"]


def test_key_reused_for_another_operation_is_409(broker, org, admin):
    other = broker.create_org("Other", credit="1")
    assert admin.post(f"/api/admin/wallets/{org['slug']}/topup", json={"amount_usd": "1", "idempotency_key": "k"}).status_code == 200
    for ref, body in ((org["slug"], {"amount_usd": "2", "idempotency_key": "k"}), (other["slug"], {"amount_usd": "1", "idempotency_key": "k"})):
        response = admin.post(f"/api/admin/wallets/{ref}/topup", json=body)
        assert response.status_code == 409 and response.json()["error"]["code"] == "idempotency_key_reused"
    assert wallet_row(broker, other["organization_id"]).balance_micros == 1_000_000


def test_adjustment_is_signed_and_never_overdraws_unless_allowed(broker, org, admin):
    url = f"/api/admin/wallets/{org['slug']}/adjustment"
    assert admin.post(url, json={"amount_micros": -1, "description": ""}).status_code in (400, 422)
    down = admin.post(url, json={"amount_micros": -4_000_000, "description": "goodwill reversal"})
    assert down.status_code == 200 and down.json()["wallet"]["balance_micros"] == 6_000_000
    too_much = admin.post(url, json={"amount_usd": "-7", "description": "oops"})
    assert too_much.status_code == 409 and too_much.json()["error"]["code"] == "would_overdraw"
    forced = admin.post(url, json={"amount_usd": "-7", "description": "chargeback", "allow_negative": True})
    assert forced.status_code == 200 and forced.json()["wallet"]["balance_micros"] == -1_000_000
    assert forced.json()["wallet"]["balance"] == "-1.000000"


@pytest.mark.parametrize(
    "path, body",
    [
        ("topup", {"amount_usd": "-1"}),
        ("topup", {"amount_usd": "0"}),
        ("topup", {}),
        ("topup", {"amount_usd": "1", "amount_micros": 1}),
        ("topup", {"amount_usd": "0.0000001"}),
        ("refund", {"amount_micros": -5}),
        ("adjustment", {"amount_micros": 0, "description": "nothing"}),
        ("adjustment", {"amount_micros": 5}),
    ],
)
def test_bad_money_requests_are_4xx_and_move_nothing(broker, org, admin, path, body):
    response = admin.post(f"/api/admin/wallets/{org['slug']}/{path}", json=body)
    assert 400 <= response.status_code < 500 and "error" in response.json()
    assert wallet_row(broker, org["organization_id"]).balance_micros == CREDIT


def test_admin_routes_need_the_service_key(broker, org):
    with broker.client(org["api_key"]) as tenant:
        assert tenant.post(f"/api/admin/wallets/{org['slug']}/topup", json={"amount_usd": "5"}).status_code == 401
        assert tenant.get(f"/api/admin/wallets/{org['slug']}").status_code == 401
    with broker.admin() as admin:
        assert admin.get("/api/admin/wallets/no-such-org").status_code == 404


def test_transactions_paginate_newest_first_and_export_csv(broker, org, admin):
    for i in range(5):
        admin.post(f"/api/admin/wallets/{org['slug']}/topup", json={"amount_micros": 1000 + i, "description": f"t{i}"})
    with broker.client(org["api_key"]) as tenant:
        seen, cursor = [], None
        while True:
            page = tenant.get("/api/wallet/transactions", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            seen += page["data"]
            cursor = page["next_cursor"]
            assert page["has_more"] == (cursor is not None)
            if cursor is None:
                break
        assert [t["id"] for t in seen] == sorted((t["id"] for t in seen), reverse=True)
        assert len(seen) == 6 and seen[-1]["description"] == "initial credit"
        assert seen[0]["amount_micros"] == 1004 and seen[0]["amount"] == "0.001004"
        only = tenant.get("/api/wallet/transactions", params={"kind": "recharge", "limit": 500}).json()["data"]
        assert len(only) == 6
        exported = tenant.get("/api/wallet/transactions", params={"format": "csv"})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [int(r["id"]) for r in rows] == [t["id"] for t in seen]
        assert rows[0]["balance_after_micros"] == str(seen[0]["balance_after_micros"])
        assert tenant.get("/api/wallet/transactions", params={"cursor": "nope"}).status_code == 400
    admin_csv = admin.get(f"/api/admin/wallets/{org['slug']}/transactions", params={"format": "csv"})
    assert admin_csv.text == exported.text


def test_tenant_sees_its_own_wallet_only(broker, org, admin):
    other = broker.create_org("Other", credit="3")
    admin.post(f"/api/admin/wallets/{other['slug']}/topup", json={"amount_usd": "1"})
    with broker.client(org["api_key"]) as tenant:
        mine = tenant.get("/api/wallet").json()
        assert (mine["organization_id"], mine["balance_micros"], mine["available"]) == (org["organization_id"], CREDIT, "10.000000")
        assert mine["currency"] == "USD" and mine["held_micros"] == 0
        ids = {t["id"] for t in tenant.get("/api/wallet/transactions").json()["data"]}
        theirs = {e.id for e in broker.rows(LedgerEntry, LedgerEntry.organization_id == other["organization_id"])}
        assert ids and not ids & theirs
        # Naming another organization with a tenant key is refused.
        assert tenant.get("/api/wallet", headers={"x-organization-id": other["organization_id"]}).status_code == 403
    assert admin.get(f"/api/admin/wallets/{other['slug']}").json()["balance_micros"] == 4_000_000


def test_low_balance_threshold_setting(broker, org, admin):
    with broker.client(org["api_key"]) as tenant:
        # Billing settings need a person with MANAGE_BILLING, not an integration key.
        refused = tenant.put("/api/wallet/settings", json={"low_balance_threshold_usd": "12.5"})
        assert refused.status_code == 403 and refused.json()["error"]["permission"] == "MANAGE_BILLING"
    route = f"/api/admin/wallets/{org['slug']}/settings"
    view = admin.put(route, json={"low_balance_threshold_usd": "12.5"}).json()
    assert view["low_balance_threshold_micros"] == 12_500_000 and view["low_balance"] is True
    assert admin.put(route, json={}).status_code == 400
    assert admin.put(route, json={"low_balance_threshold_micros": -1}).status_code == 422
    assert wallet_row(broker, org["organization_id"]).low_balance_alerted is True  # already below: no alert now


def test_margin_per_organization(broker, org, admin):
    chat = {"model": "mock-chat", "messages": [{"role": "user", "content": "hello there broker"}]}
    with broker.client(org["api_key"]) as tenant:
        assert tenant.post("/v1/chat/completions", json=chat).headers["x-aibroker-cost-micros"] == "24"  # 18 x 1.30
        set_zero = admin.put(f"/api/admin/organizations/{org['slug']}/margin", json={"margin_bps": 0})
        assert set_zero.json() == {"organization_id": org["organization_id"], "margin_bps": 0, "effective_margin_bps": 0}
        assert tenant.post("/v1/chat/completions", json=chat).headers["x-aibroker-cost-micros"] == "18"
        admin.put(f"/api/admin/organizations/{org['slug']}/margin", json={"margin_bps": 5000})
        assert tenant.post("/v1/chat/completions", json=chat).headers["x-aibroker-cost-micros"] == "27"
        cleared = admin.put(f"/api/admin/organizations/{org['slug']}/margin", json={"margin_bps": None}).json()
        assert cleared["effective_margin_bps"] == 3000
        assert tenant.post("/v1/chat/completions", json=chat).headers["x-aibroker-cost-micros"] == "24"
    assert admin.put(f"/api/admin/organizations/{org['slug']}/margin", json={"margin_bps": -1}).status_code == 422

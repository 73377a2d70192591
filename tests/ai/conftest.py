"""Fixtures of the AI workspace tests: an organization with credit, a second one, and a team
(an OWNER and a MEMBER signed in to one organization)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from aibroker.billing.audit import verify
from aibroker.models import Organization
from tests.support.accounts import bearer, signup

PASS = "ai-workspace-pass-7"


@pytest.fixture
def broker_env(broker_env: dict[str, str]) -> dict[str, str]:
    return {**broker_env, "AIBROKER_MOCK_LATENCY_MS": "0"}


@pytest.fixture
def org(broker) -> dict[str, Any]:
    return broker.create_org("Acme", credit="10")


@pytest.fixture
def other_org(broker) -> dict[str, Any]:
    return broker.create_org("Globex", credit="10")


@pytest.fixture
def team(broker) -> dict[str, Any]:
    """{"org_id", "owner": token, "member": token} of one organization with $5 of credit."""
    owner = signup(broker, "ws-owner@example.com", organization_name="Workspace Team")
    org_id = owner["organization"]["id"]
    with broker.db.begin() as conn:  # a plan with room for a second member
        conn.execute(update(Organization).where(Organization.id == org_id).values(plan="professional"))
    with broker.admin() as admin:
        assert admin.post(f"/api/admin/wallets/{org_id}/topup", json={"amount_usd": "5"}).status_code == 200
    with broker.client() as http:
        made = http.post(f"/api/organizations/{org_id}/invitations", json={"email": "ws-member@example.com", "role": "MEMBER"},
                         headers=bearer(owner["access_token"]))
        assert made.status_code == 201, made.text
        joined = http.post("/api/invitations/accept", json={"token": made.json()["token"], "password": PASS})
        assert joined.status_code == 200, joined.text
    return {"org_id": org_id, "owner": owner["access_token"], "member": joined.json()["access_token"]}


def assert_ledger_clean(broker) -> None:
    """What `aibroker verify-ledger` checks: balances, holds, and a usage record for every debit."""
    broker.flush()
    report = verify(broker.db)
    assert report.ok, report.problems

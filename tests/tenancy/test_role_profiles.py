"""A signed-in user's routing profile comes from their role, as the platform maps it
(AIBROKER_ROLE_PROFILES); a role the map does not name runs with `default`, and no user
(an organization's ADMIN included) names a profile of their own."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from aibroker.models import Organization
from tests.routing.conftest import MOCK_CONFIG, load_yaml
from tests.support.accounts import bearer, signup

CHAT = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}]}
RESUMO = {"x-aibroker-feature": "resumo"}


@pytest.fixture
def broker_env(broker_env):
    return {**broker_env, "AIBROKER_ROLE_PROFILES": json.dumps({"AGENT": "admin"})}


def test_the_role_map_sets_a_users_profile_and_nothing_else_does(broker, tmp_path):
    load_yaml(broker, tmp_path, MOCK_CONFIG)  # resumo on free: 3 a day; the admin profile: no limits
    owner = signup(broker, "map@example.com", organization_name="Mapped")
    org_id = owner["organization"]["id"]
    with broker.client() as http:
        topup = http.post(f"/api/admin/wallets/{org_id}/topup", json={"amount_usd": "5"}, headers=bearer("test-admin-token"))
        assert topup.status_code == 200, topup.text
        with broker.db.begin() as conn:
            conn.execute(update(Organization).where(Organization.id == org_id).values(plan="starter"))
        made = {}
        for role in ("AGENT", "ADMIN"):
            invite = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                               json={"email": f"{role.lower()}@mapped.example", "role": role}).json()
            made[role] = http.post("/api/invitations/accept", json={"token": invite["token"], "password": "field-pass-2024"}).json()["access_token"]
        with broker.db.begin() as conn:
            conn.execute(update(Organization).where(Organization.id == org_id).values(plan="free"))
        broker.services.auth.forget()
        agent = [http.post("/v1/chat/completions", json=CHAT, headers={**RESUMO, **bearer(made["AGENT"])}) for _ in range(4)]
        admin_named = http.post("/v1/chat/completions", json=CHAT, headers={**RESUMO, **bearer(made["ADMIN"]), "x-aibroker-profile": "admin"})
        owner_named = http.post("/v1/chat/completions", json=CHAT, headers={**RESUMO, **bearer(owner["access_token"]), "x-aibroker-profile": "admin"})
        admin_plain = [http.post("/v1/chat/completions", json=CHAT, headers={**RESUMO, **bearer(made["ADMIN"])}) for _ in range(4)]
        # A user passes on to a key only what their role gives them (the OWNER's role maps to nothing).
        owner_key = http.post("/api/keys", json={"name": "a", "profile": "admin"}, headers=bearer(owner["access_token"]))
    assert [r.status_code for r in agent] == [200] * 4, agent[-1].text
    assert "x-aibroker-feature-remaining-day" not in agent[0].headers
    assert admin_named.status_code == owner_named.status_code == 403
    assert admin_named.json()["error"]["code"] == "profile_not_allowed"
    assert [r.status_code for r in admin_plain] == [200, 200, 200, 429]  # `default`: the plan's 3 a day
    assert owner_key.status_code == 403 and owner_key.json()["error"]["code"] == "profile_not_allowed"

"""Each role's permissions over representative routes (OWNER, ADMIN, AGENT, DISTRIBUTOR,
MEMBER), members invited under seed 000's names (PROPIETARIO, AGENTE, DISTRIBUIDOR) and
answered under the canonical ones."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from aibroker.models import Organization
from tests.support.accounts import bearer, signup

PASS = "role-table-pass-9"
CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]}
ROLES = ("OWNER", "ADMIN", "AGENT", "DISTRIBUTOR", "MEMBER")
INVITED_AS = {"ADMIN": "ADMIN", "AGENT": "AGENTE", "DISTRIBUTOR": "DISTRIBUIDOR", "MEMBER": "MEMBER"}

# (method, path, body, permission, roles allowed)
ROUTES = [
    ("POST", "/v1/chat/completions", CHAT, "USE_AI_BROKER", ROLES),
    ("GET", "/api/ai/usage", None, "VIEW_USAGE", ("OWNER", "ADMIN", "AGENT", "DISTRIBUTOR")),
    ("GET", "/api/wallet", None, "VIEW_USAGE", ("OWNER", "ADMIN", "AGENT", "DISTRIBUTOR")),
    ("POST", "/api/keys", {"name": "role-table"}, "MANAGE_KEYS", ("OWNER", "ADMIN")),
    ("GET", "/api/payments", None, "MANAGE_BILLING", ("OWNER", "ADMIN", "DISTRIBUTOR")),
    ("GET", "/api/payments/subscription/{org}", None, "MANAGE_BILLING", ("OWNER", "ADMIN", "DISTRIBUTOR")),
    ("GET", "/api/organizations/{org}/members", None, "MANAGE_MEMBERS", ("OWNER", "ADMIN")),
    ("GET", "/api/organizations/{org}/invitations", None, "MANAGE_MEMBERS", ("OWNER", "ADMIN")),
    ("GET", "/api/channels", None, "MANAGE_CHANNELS", ("OWNER", "ADMIN", "AGENT")),
    ("PATCH", "/api/organizations/{org}", {"name": "Role Table"}, "MANAGE_ORGANIZATION", ("OWNER",)),
]


@pytest.fixture
def members(broker):
    owner = signup(broker, "table-owner@example.com", organization_name="Role Table")
    org_id = owner["organization"]["id"]
    with broker.db.begin() as conn:
        conn.execute(update(Organization).where(Organization.id == org_id).values(plan="professional"))
    with broker.admin() as admin:
        assert admin.post(f"/api/admin/wallets/{org_id}/topup", json={"amount_usd": "5"}).status_code == 200
    tokens = {"OWNER": owner["access_token"]}
    with broker.client() as http:
        for role, name in INVITED_AS.items():
            made = http.post(f"/api/organizations/{org_id}/invitations", json={"email": f"{role.lower()}@table.example", "role": name},
                             headers=bearer(owner["access_token"]))
            assert made.status_code == 201 and made.json()["role"] == role, made.text
            joined = http.post("/api/invitations/accept", json={"token": made.json()["token"], "password": PASS})
            assert joined.status_code == 200, joined.text
            tokens[role] = joined.json()["access_token"]
    return org_id, tokens


def test_every_role_gets_exactly_its_permissions(broker, members):
    org_id, tokens = members
    seen = {}
    with broker.client() as http:
        me = {role: http.get("/api/auth/me", headers=bearer(token)).json() for role, token in tokens.items()}
        for method, path, body, permission, allowed in ROUTES:
            for role in ROLES:
                response = http.request(method, path.format(org=org_id), json=body, headers=bearer(tokens[role]))
                seen[(path, role)] = response.status_code
                if role in allowed:
                    assert response.status_code < 400, (method, path, role, response.text)
                else:
                    assert response.status_code == 403, (method, path, role, response.text)
                    assert response.json()["error"]["permission"] == permission, (path, role)
    for role in ROLES:
        assert me[role]["role"] == role  # canonical, whatever name the invitation used
    assert len(seen) == len(ROUTES) * len(ROLES)


def test_unknown_role_names_are_400_everywhere(broker, members):
    org_id, tokens = members
    with broker.client() as http:
        for role in ("KING", "", "propietarios", "SUPER_ADMIN"):
            invited = http.post(f"/api/organizations/{org_id}/invitations", json={"email": "x@table.example", "role": role},
                                headers=bearer(tokens["OWNER"]))
            assert invited.status_code == 400, (role, invited.text)

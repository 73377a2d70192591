"""The platform SUPER_ADMIN: granted and withdrawn only by `aibroker user promote | demote`;
a super admin's own JWT reaches /api/admin/*, an organization's owner or admin gets 403,
and nothing in the API can set the flag."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import insert

from aibroker.kit.clock import utcnow
from aibroker.models import Membership, User
from tests.support.accounts import bearer, signup


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIBROKER_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "aibroker.cli", *args], capture_output=True, text=True, env=env, timeout=60)


def _is_super_admin(broker, email: str) -> bool:
    [user] = broker.rows(User, User.email == email)
    return user.is_super_admin


def _org_admin(broker, organization_id: str) -> str:
    """A second user, ADMIN of the organization (set up directly: the FREE plan allows one invited user)."""
    user = signup(broker, "admin@tenant.example", organization_name=None)
    with broker.db.begin() as conn:
        conn.execute(insert(Membership).values(id="mem_admin_probe", organization_id=organization_id, user_id=user["user"]["id"],
                                               role="ADMIN", created_at=utcnow()))
    return user["access_token"]


def test_promote_and_demote_govern_the_admin_routes(broker):
    root = signup(broker, "root@platform.example", organization_name="Platform Co")
    other = signup(broker, "owner@tenant.example", organization_name="Tenant Co")
    org_admin = _org_admin(broker, other["organization"]["id"])
    token = root["access_token"]  # issued before the promotion: the flag is read from the database
    with broker.client() as http:
        before = http.get("/api/admin/organizations", headers=bearer(token))

        promoted = _cli(broker.database_url, "user", "promote", "Root@Platform.example", "--json")
        assert promoted.returncode == 0, promoted.stderr
        again = _cli(broker.database_url, "user", "promote", "root@platform.example", "--json")

        listed = http.get("/api/admin/organizations", headers=bearer(token))
        plan = http.post("/api/admin/plans", headers=bearer(token), json={"slug": "by-root", "name": "By Root"})
        owner_refused = http.get("/api/admin/organizations", headers=bearer(other["access_token"]))
        admin_refused = http.get("/api/admin/organizations", headers=bearer(org_admin))
        admin_me = http.get("/api/auth/me", headers=bearer(org_admin)).json()
        # A super admin acts in any organization with its own login.
        tenant_keys = http.get("/api/keys", headers=bearer(token, **{"x-organization-id": other["organization"]["id"]}))
        login = http.post("/api/auth/login", json={"email": "root@platform.example", "password": "correct-horse-42"}).json()
        me = http.get("/api/auth/me", headers=bearer(login["access_token"])).json()

        demoted = _cli(broker.database_url, "user", "demote", "root@platform.example", "--json")
        assert demoted.returncode == 0, demoted.stderr
        after = http.get("/api/admin/organizations", headers=bearer(login["access_token"]))

    assert before.status_code == 403 and before.json()["error"]["code"] == "super_admin_required"
    assert json.loads(promoted.stdout) == {"user_id": root["user"]["id"], "email": "root@platform.example",
                                           "is_super_admin": True, "changed": True}
    assert json.loads(again.stdout)["changed"] is False
    assert listed.status_code == 200
    assert {o["name"] for o in listed.json()["data"]} >= {"Platform Co", "Tenant Co"}
    assert plan.status_code == 201, plan.text
    assert owner_refused.status_code == 403
    assert admin_me["role"] == "ADMIN" and admin_refused.status_code == 403
    assert admin_refused.json()["error"]["code"] == "super_admin_required"
    assert tenant_keys.status_code == 200
    assert me["role"] == "SUPER_ADMIN" and me["user"]["is_super_admin"] is True
    assert json.loads(demoted.stdout)["is_super_admin"] is False
    assert after.status_code == 403 and not _is_super_admin(broker, "root@platform.example")


def test_cli_refuses_an_unknown_user(broker):
    result = _cli(broker.database_url, "user", "promote", "nobody@platform.example")
    assert result.returncode == 1
    assert "no user with the e-mail 'nobody@platform.example'" in result.stderr


def test_no_api_route_grants_super_admin(broker):
    with broker.client() as http:
        sneaky = http.post("/api/auth/signup", json={"email": "sneaky@tenant.example", "password": "correct-horse-42",
                                                     "name": "S", "organization_name": "Sneaky", "is_super_admin": True,
                                                     "role": "SUPER_ADMIN"})
        assert sneaky.status_code == 201, sneaky.text
        token, org_id = sneaky.json()["access_token"], sneaky.json()["organization"]["id"]
        invite = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(token),
                           json={"email": "friend@tenant.example", "role": "SUPER_ADMIN"})
        patched = http.patch(f"/api/organizations/{org_id}", headers=bearer(token), json={"is_super_admin": True})
        admin_route = http.get("/api/admin/organizations", headers=bearer(token))
        me = http.get("/api/auth/me", headers=bearer(token)).json()
    assert invite.status_code == 400 and invite.json()["error"]["param"] == "role"
    assert patched.status_code in (200, 400, 422)
    assert admin_route.status_code == 403
    assert me["role"] == "OWNER" and me["user"]["is_super_admin"] is False
    assert not _is_super_admin(broker, "sneaky@tenant.example")


def test_admin_routes_still_refuse_api_keys_and_forged_tokens(broker):
    org = broker.create_org("Keyed")
    with broker.client() as http:
        api_key = http.get("/api/admin/organizations", headers=bearer(org["api_key"]))
        forged = http.get("/api/admin/organizations", headers=bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.bad"))
        missing = http.get("/api/admin/organizations")
        service_key = http.get("/api/admin/organizations", headers=bearer("test-admin-token"))
    assert api_key.status_code == 401 and forged.status_code == 401 and missing.status_code == 401
    assert service_key.status_code == 200

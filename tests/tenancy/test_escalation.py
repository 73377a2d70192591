"""Privilege escalation paths (issue 18, items 1-3), each tried the way an attacker would:
a low-privilege credential reading an invitation token from the events, an organization
code making a stranger OWNER, and a tenant key naming a routing profile or group that
escapes its plan's limits."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import update

from aibroker.models import Membership, Organization, OrganizationCode, UsageRecord
from tests.routing.conftest import MOCK_CONFIG, load_yaml
from tests.support.accounts import PASSWORD, bearer, signup
from tests.support.broker import ADMIN_TOKEN

CHAT = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}]}


def _set_plan(broker, org_id: str, plan: str) -> None:
    with broker.db.begin() as conn:
        conn.execute(update(Organization).where(Organization.id == org_id).values(plan=plan))


def _as_admin(org_id: str) -> dict[str, str]:
    return bearer(ADMIN_TOKEN, **{"x-organization-id": org_id})


def _wait_rows(broker, *where, count: int = 1, timeout: float = 10.0) -> list:
    """Usage rows matching `where`, once at least `count` have committed."""
    deadline = time.monotonic() + timeout
    while True:
        broker.flush()
        rows = broker.rows(UsageRecord, *where)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


# -- item 1: invitation tokens ------------------------------------------------------------


def test_an_api_key_cannot_read_an_admin_invitation_token_and_become_admin(broker):
    owner = signup(broker, "boss@example.com", organization_name="Escalate")
    org_id = owner["organization"]["id"]
    _set_plan(broker, org_id, "starter")
    with broker.client() as http:
        api_key = http.post("/api/keys", json={"name": "integration"}, headers=bearer(owner["access_token"])).json()["key"]
        made = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                         json={"email": "new-admin@example.com", "role": "ADMIN", "accept_url": "https://app.example/join"})
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        # The attacker holds only the API key: everything it can list says nothing of the token.
        events = http.get("/api/events", headers=bearer(api_key))
        typed = http.get("/api/events", params={"type": "invitation.created"}, headers=bearer(api_key))
        assert events.status_code == typed.status_code == 200
        assert [e["type"] for e in typed.json()["data"]] == ["invitation.created"]
        assert typed.json()["data"][0]["payload"]["role"] == "ADMIN"
        for listing in (events, typed):
            assert token not in listing.text and "token=" not in listing.text and "abi_" not in listing.text
        # ... so the accept it tries with what it found fails, and it gains no membership.
        found = typed.json()["data"][0]["payload"]
        tries = [found.get("link"), found.get("invitation_id"), found.get("token")]
        for guess in tries:
            attempt = http.post("/api/invitations/accept", json={"token": guess or "", "password": "attacker-pass-2024"})
            assert attempt.status_code in (404, 422), attempt.text
        assert {m.role for m in broker.rows(Membership, Membership.organization_id == org_id)} == {"OWNER"}
        # The invitee, with the token from the invitation's own response, joins as ADMIN.
        accepted = http.post("/api/invitations/accept", json={"token": token, "password": "invited-admin-2024", "name": "New"})
    assert accepted.status_code == 200, accepted.text
    assert sorted(m.role for m in broker.rows(Membership, Membership.organization_id == org_id)) == ["ADMIN", "OWNER"]


def test_agent_and_distributor_logins_do_not_see_invitation_tokens(broker):
    owner = signup(broker, "lead@example.com", organization_name="Roles")
    org_id = owner["organization"]["id"]
    _set_plan(broker, org_id, "professional")
    tokens = {}
    with broker.client() as http:
        for role in ("AGENT", "DISTRIBUTOR"):
            invite = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                               json={"email": f"{role.lower()}@example.com", "role": role}).json()
            joined = http.post("/api/invitations/accept", json={"token": invite["token"], "password": "field-pass-2024"})
            tokens[role] = joined.json()["access_token"]
        pending = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                            json={"email": "later@example.com", "role": "ADMIN", "accept_url": "https://app.example/j"}).json()
        for role, access in tokens.items():
            seen = http.get("/api/events", headers=bearer(access))
            assert seen.status_code == 200, (role, seen.text)
            assert pending["token"] not in seen.text and "token=" not in seen.text


# -- item 2: organization codes -----------------------------------------------------------


def _code_for_new_org(broker, name: str = "Sold") -> tuple[str, str]:
    """An organization the platform created (no members yet) and a code for it."""
    org = broker.create_org(name)
    with broker.client() as http:
        rotated = http.post(f"/api/organizations/{org['organization_id']}/code/rotate", headers=_as_admin(org["organization_id"]))
    assert rotated.status_code == 200, rotated.text
    return org["organization_id"], rotated.json()["code"]


def test_create_from_code_makes_only_the_first_owner(broker):
    org_id, code = _code_for_new_org(broker)
    _set_plan(broker, org_id, "starter")
    with broker.client() as http:
        first = http.post("/api/organizations/create-from-code", json={"code": code, "email": "first@example.com", "password": PASSWORD})
        assert first.status_code == 201, first.text
        # The code again (or a fresh one) on an organization that has its owner: 409, nobody added.
        again = http.post("/api/organizations/create-from-code", json={"code": code, "email": "thief@example.com", "password": PASSWORD})
        fresh = http.post(f"/api/organizations/{org_id}/code/rotate", headers=bearer(first.json()["access_token"]))
        assert fresh.status_code == 200, fresh.text
        with_fresh = http.post("/api/organizations/create-from-code",
                               json={"code": fresh.json()["code"], "email": "thief2@example.com", "password": PASSWORD})
    assert again.status_code == with_fresh.status_code == 409
    assert with_fresh.json()["error"]["code"] == "organization_has_members"
    assert [m.role for m in broker.rows(Membership, Membership.organization_id == org_id)] == ["OWNER"]


def test_a_paid_organization_with_an_owner_cannot_be_taken_with_its_code(broker):
    owner = signup(broker, "payer@example.com", organization_name="Paid")
    org_id = owner["organization"]["id"]
    _set_plan(broker, org_id, "starter")
    with broker.client() as http:
        code = http.post(f"/api/organizations/{org_id}/code/rotate", headers=bearer(owner["access_token"])).json()["code"]
        taken = http.post("/api/organizations/create-from-code", json={"code": code, "email": "x@example.com", "password": PASSWORD})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "organization_has_members"
    assert [m.role for m in broker.rows(Membership, Membership.organization_id == org_id)] == ["OWNER"]


def test_only_owner_and_admin_read_or_change_the_code(broker):
    owner = signup(broker, "chief@example.com", organization_name="Readers")
    org_id = owner["organization"]["id"]
    _set_plan(broker, org_id, "professional")
    access = {"OWNER": owner["access_token"]}
    with broker.client() as http:
        for role in ("ADMIN", "DISTRIBUTOR", "AGENT"):
            invite = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                               json={"email": f"{role.lower()}@readers.example", "role": role}).json()
            access[role] = http.post("/api/invitations/accept", json={"token": invite["token"], "password": "field-pass-2024"}).json()["access_token"]
        api_key = http.post("/api/keys", json={"name": "k"}, headers=bearer(owner["access_token"])).json()["key"]
        code = http.post(f"/api/organizations/{org_id}/code/rotate", headers=bearer(owner["access_token"])).json()["code"]
        seen = {role: http.get(f"/api/organizations/{org_id}/code", headers=bearer(tok)) for role, tok in access.items()}
        subscription = {role: http.get(f"/api/payments/subscription/{org_id}", headers=bearer(tok)) for role, tok in access.items()}
        rotate = {who: http.post(f"/api/organizations/{org_id}/code/rotate", headers=bearer(tok))
                  for who, tok in (("DISTRIBUTOR", access["DISTRIBUTOR"]), ("AGENT", access["AGENT"]), ("key", api_key))}
        revoke = {who: http.delete(f"/api/organizations/{org_id}/code", headers=bearer(tok))
                  for who, tok in (("DISTRIBUTOR", access["DISTRIBUTOR"]), ("key", api_key))}
        by_key = http.get(f"/api/organizations/{org_id}/code", headers=bearer(api_key))
    assert seen["OWNER"].json()["code"] == seen["ADMIN"].json()["code"] == code
    assert seen["DISTRIBUTOR"].status_code == seen["AGENT"].status_code == by_key.status_code == 403
    # A DISTRIBUTOR pays (MANAGE_BILLING) and sees the subscription, but not the code.
    assert subscription["DISTRIBUTOR"].status_code == 200 and subscription["DISTRIBUTOR"].json()["organization_code"] is None
    assert code not in subscription["DISTRIBUTOR"].text
    assert subscription["OWNER"].json()["organization_code"] == code
    assert all(r.status_code == 403 for r in (*rotate.values(), *revoke.values()))


def test_rotated_revoked_and_expired_codes_stop_working(broker):
    owner = signup(broker, "rot@example.com", organization_name="Rotating")
    org_id = owner["organization"]["id"]
    with broker.client() as http:
        http.patch(f"/api/organizations/{org_id}", json={"allow_code_auth": True}, headers=bearer(owner["access_token"]))
        old = http.post(f"/api/organizations/{org_id}/code/rotate", headers=bearer(owner["access_token"])).json()["code"]
        assert http.get("/api/ai/usage", headers={"x-organization-code": old}).status_code == 200  # cached now
        new = http.post(f"/api/organizations/{org_id}/code/rotate", headers=bearer(owner["access_token"])).json()
        assert new["code"] != old and new["expires_at"] is not None
        rotated_away = http.get("/api/ai/usage", headers={"x-organization-code": old})
        validate_old = http.post("/api/organizations/validate-code", json={"code": old})
        works = http.get("/api/ai/usage", headers={"x-organization-code": new["code"]})
        revoked = http.delete(f"/api/organizations/{org_id}/code", headers=bearer(owner["access_token"]))
        after_revoke = http.get("/api/ai/usage", headers={"x-organization-code": new["code"]})
        redeem_revoked = http.post("/api/organizations/create-from-code", json={"code": new["code"], "email": "r@example.com", "password": PASSWORD})
        gone = http.get(f"/api/organizations/{org_id}/code", headers=bearer(owner["access_token"]))
        revoke_again = http.delete(f"/api/organizations/{org_id}/code", headers=bearer(owner["access_token"]))
        # Expiry: a code past its expires_at neither authenticates nor redeems.
        third = http.post(f"/api/organizations/{org_id}/code/rotate", headers=bearer(owner["access_token"])).json()["code"]
        with broker.db.begin() as conn:
            conn.execute(update(OrganizationCode).where(OrganizationCode.code == third)
                         .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
        broker.services.auth.forget()
        expired_auth = http.get("/api/ai/usage", headers={"x-organization-code": third})
        expired_validate = http.post("/api/organizations/validate-code", json={"code": third})
    assert rotated_away.status_code == 401 and rotated_away.json()["error"]["code"] == "invalid_organization_code"
    assert validate_old.status_code == 404
    assert works.status_code == 200, works.text
    assert revoked.status_code == 204
    assert after_revoke.status_code == 401 and redeem_revoked.status_code == 404
    assert gone.status_code == 404 and revoke_again.status_code == 404
    assert expired_auth.status_code == 401 and expired_auth.json()["error"]["code"] == "expired_organization_code"
    assert expired_validate.status_code == 404


# -- item 3: routing profiles and groups --------------------------------------------------


def _beta_override(broker) -> None:
    with broker.admin() as admin:
        created = admin.post("/api/admin/routing/overrides", json={
            "group_key": "beta", "base_plan": "free", "feature": "resumo", "provider": "mock", "model": "mock-text",
        })
    assert created.status_code == 201, created.text


def test_a_tenant_key_cannot_declare_itself_a_profile_or_group(broker, tmp_path):
    load_yaml(broker, tmp_path, MOCK_CONFIG)
    _beta_override(broker)
    org = broker.create_org("Free tier", plan="free")
    headers = {"x-aibroker-feature": "resumo"}
    with broker.client(org["api_key"]) as client:
        tries = [
            client.post("/v1/chat/completions", json=CHAT, headers={**headers, "x-aibroker-profile": "admin"}),
            client.post("/v1/chat/completions", json={**CHAT, "profile": "admin"}, headers=headers),
            client.post("/v1/chat/completions", json=CHAT, headers={**headers, "x-aibroker-group": "beta"}),
            client.post("/api/ai/broker", json={"prompt": "x", "usageType": "resumo", "profile": "admin"}),
            client.post("/api/ai/broker", json={"prompt": "x", "usageType": "resumo", "group": "beta"}),
            client.post("/v1/messages", json={"model": "auto", "max_tokens": 5, "messages": CHAT["messages"], "profile": "admin"},
                        headers=headers),
            client.post("/v1/embeddings", json={"model": "mock-embed", "input": "x"}, headers={"x-aibroker-profile": "admin"}),
        ]
        # Nor can it grant a key what it does not have itself.
        grant = client.post("/api/keys", json={"name": "escalate", "allowed_profiles": ["admin"]})
        own = client.post("/api/keys", json={"name": "escalate", "profile": "admin"})
        # Within the plan's limits (resumo: 3 a day on free) its own calls still run.
        plain = [client.post("/v1/chat/completions", json=CHAT, headers=headers) for _ in range(4)]
    for refused in tries:
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        # /v1/messages speaks Anthropic's fixed error types: a 403 is its permission_error.
        anthropic = refused.request.url.path == "/v1/messages"
        assert error["type"] == ("permission_error" if anthropic else "profile_not_allowed") and error["code"] == "profile_not_allowed"
        assert "admin" in error["message"] or "beta" in error["message"]
    assert grant.status_code == own.status_code == 403
    assert grant.json()["error"]["code"] == "profile_not_allowed"
    assert [r.status_code for r in plain] == [200, 200, 200, 429]
    rows = _wait_rows(broker, UsageRecord.organization_id == org["organization_id"], UsageRecord.status == "refused", count=len(tries) + 1)
    refusals = [r for r in rows if r.error_type == "profile_not_allowed"]
    assert len(refusals) == len(tries) and all(r.billed_cost_micros == 0 for r in refusals)


def test_the_platform_key_and_allowed_keys_choose_profiles_and_groups(broker, tmp_path):
    load_yaml(broker, tmp_path, MOCK_CONFIG)
    _beta_override(broker)
    org = broker.create_org("Free tier", plan="free")
    org_id = org["organization_id"]
    headers = {"x-aibroker-feature": "resumo"}
    with broker.client() as http:
        # (resumo on free: 3 a day, counted by organization; the group's two calls count, admin's don't)
        grouped = http.post("/v1/chat/completions", json=CHAT, headers={**headers, **_as_admin(org_id), "x-aibroker-group": "beta"})
        as_platform = [http.post("/v1/chat/completions", json=CHAT, headers={**headers, **_as_admin(org_id), "x-aibroker-profile": "admin"})
                       for _ in range(4)]
        # The platform grants a key profiles and groups; its listing shows them (a fresh organization:
        # the admin calls above count towards resumo's daily 3 of the first).
        org_id = broker.create_org("Free tier 2", plan="free")["organization_id"]
        made = http.post("/api/keys", headers=_as_admin(org_id),
                         json={"name": "staff", "allowed_profiles": ["admin"], "allowed_groups": ["beta"]})
        assert made.status_code == 201, made.text
        pinned = http.post("/api/keys", headers=_as_admin(org_id), json={"name": "pinned", "profile": "admin"})
        unknown = http.post("/api/keys", headers=_as_admin(org_id), json={"name": "bad", "profile": "nobody"})
        listed = {k["name"]: k for k in http.get("/api/keys", headers=_as_admin(org_id)).json()}
    assert [r.status_code for r in as_platform] == [200] * 4 and "x-aibroker-feature-remaining-day" not in as_platform[0].headers
    assert grouped.status_code == 200 and grouped.headers["x-aibroker-model"] == "mock/mock-text"
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_profile"
    assert (listed["staff"]["allowed_profiles"], listed["staff"]["allowed_groups"], listed["staff"]["profile"]) == (["admin"], ["beta"], None)
    assert listed["pinned"]["profile"] == "admin"
    with broker.client(made.json()["key"]) as staff, broker.client(pinned.json()["key"]) as pin:
        staff_group = staff.post("/v1/chat/completions", json=CHAT, headers={**headers, "x-aibroker-group": "beta"})
        allowed = [staff.post("/v1/chat/completions", json=CHAT, headers={**headers, "x-aibroker-profile": "admin"}) for _ in range(4)]
        other_profile = staff.post("/v1/chat/completions", json=CHAT, headers={**headers, "x-aibroker-profile": "usuaria"})
        from_key = [pin.post("/v1/chat/completions", json=CHAT, headers=headers) for _ in range(4)]  # no header: the key's profile
    assert [r.status_code for r in allowed] == [200] * 4
    assert staff_group.status_code == 200 and staff_group.headers["x-aibroker-model"] == "mock/mock-text"
    assert other_profile.status_code == 403 and other_profile.json()["error"]["code"] == "profile_not_allowed"
    assert [r.status_code for r in from_key] == [200] * 4 and "x-aibroker-feature-remaining-day" not in from_key[0].headers


def test_profiles_on_keys_change_only_through_the_platform(broker, tmp_path):
    load_yaml(broker, tmp_path, MOCK_CONFIG)
    owner = signup(broker, "keys@example.com", organization_name="Keys")
    org_id = owner["organization"]["id"]
    with broker.client() as http:
        made = http.post("/api/keys", json={"name": "app"}, headers=bearer(owner["access_token"])).json()
        self_grant = http.patch(f"/api/keys/{made['id']}", json={"allowed_profiles": ["admin"]}, headers=bearer(owner["access_token"]))
        granted = http.patch(f"/api/keys/{made['id']}", json={"allowed_profiles": ["admin"], "profile": "usuaria"}, headers=_as_admin(org_id))
        cleared = http.patch(f"/api/keys/{made['id']}", json={"allowed_profiles": None}, headers=_as_admin(org_id))
        renamed = http.patch(f"/api/keys/{made['id']}", json={"name": "renamed"}, headers=bearer(owner["access_token"]))
    assert self_grant.status_code == 403 and self_grant.json()["error"]["code"] == "profile_not_allowed"
    assert granted.status_code == 200 and granted.json()["allowed_profiles"] == ["admin"] and granted.json()["profile"] == "usuaria"
    assert cleared.status_code == 200 and cleared.json()["allowed_profiles"] == []
    assert renamed.status_code == 200 and renamed.json()["profile"] == "usuaria"  # other fields keep working for the tenant


def test_unknown_profile_on_an_unrouted_feature_is_400_and_unbilled(broker, tmp_path):
    load_yaml(broker, tmp_path, MOCK_CONFIG)
    org = broker.create_org("Plain")
    with broker.client() as http:
        refused = http.post("/v1/chat/completions", json={**CHAT, "model": "mock-chat"},
                            headers={**_as_admin(org["organization_id"]), "x-aibroker-profile": "nobody"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "unknown_profile"
    broker.flush()
    billed = [r for r in broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"]) if r.billed_cost_micros]
    assert billed == []

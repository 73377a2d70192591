"""Signup, login (with lockout), refresh rotation, logout, /me, roles and permissions."""

from __future__ import annotations

import jwt
import pytest

from aibroker.models import Membership, Organization, RefreshToken, User
from tests.support.accounts import PASSWORD, bearer, signup


def test_signup_creates_user_trial_org_and_owner_membership(broker):
    answer = signup(broker, "ana@example.com", organization_name="Acme Labs")
    assert answer["token_type"] == "bearer" and answer["access_token"].count(".") == 2
    assert answer["organization"]["status"] == "TRIAL" and answer["organization"]["plan"] == "FREE"
    [user] = broker.rows(User, User.email == "ana@example.com")
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    [membership] = broker.rows(Membership, Membership.user_id == user.id)
    assert membership.role == "OWNER" and membership.organization_id == answer["organization"]["id"]
    [org] = broker.rows(Organization, Organization.id == membership.organization_id)
    assert org.status == "trial"


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short1", "password_too_short"),
        ("onlyletterslong", "password_needs_letters_and_digits"),
        ("1234567890123", "password_needs_letters_and_digits"),
        ("weakling77-pass", "password_contains_email"),
        ("aaaaaaaaa1a1", "password_too_repetitive"),
    ],
)
def test_weak_passwords_are_rejected_naming_the_rule(broker, password, rule):
    with broker.client() as http:
        response = http.post("/api/auth/signup", json={"email": "weakling77@example.com", "password": password, "name": "W"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == rule and error["param"] == "password" and error["message"]
    assert broker.rows(User) == []


def test_duplicate_email_and_bad_email_are_clear_4xx(broker):
    signup(broker, "dup@example.com", organization_name=None)
    with broker.client() as http:
        again = http.post("/api/auth/signup", json={"email": "DUP@example.com", "password": PASSWORD, "name": "x"})
        bad = http.post("/api/auth/signup", json={"email": "not-an-email", "password": PASSWORD, "name": "x"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "email_taken"
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "email"


def test_login_refresh_rotation_and_logout(broker):
    signup(broker, "bo@example.com")
    with broker.client() as http:
        login = http.post("/api/auth/login", json={"email": "bo@example.com", "password": PASSWORD})
        assert login.status_code == 200, login.text
        tokens = login.json()
        assert set(tokens) >= {"access_token", "refresh_token", "token_type"} and tokens["token_type"] == "bearer"
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 15 * 60
        rotated = http.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert rotated.status_code == 200 and rotated.json()["refresh_token"] != tokens["refresh_token"]
        # The old refresh token is spent; presenting it again ends the whole session family.
        reused = http.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert reused.status_code == 401 and reused.json()["error"]["code"] == "refresh_token_reused"
        after = http.post("/api/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]})
        assert after.status_code == 401
        second = http.post("/api/auth/login", json={"email": "bo@example.com", "password": PASSWORD}).json()
        assert http.post("/api/auth/logout", json={"refresh_token": second["refresh_token"]}).status_code == 204
        assert http.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert all(row.token_hash != tokens["refresh_token"] for row in broker.rows(RefreshToken))


def test_lockout_after_five_failures(broker):
    signup(broker, "cy@example.com")
    with broker.client() as http:
        codes = [http.post("/api/auth/login", json={"email": "cy@example.com", "password": "wrong-pass-1"}).status_code for _ in range(5)]
        assert codes == [401, 401, 401, 401, 429]
        locked = http.post("/api/auth/login", json={"email": "cy@example.com", "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "account_locked" and "locked" in locked.json()["error"]["message"]
    assert int(locked.headers["retry-after"]) > 0
    [user] = broker.rows(User, User.email == "cy@example.com")
    assert user.locked_until is not None


def test_unknown_email_and_wrong_password_look_the_same(broker):
    signup(broker, "dee@example.com")
    with broker.client() as http:
        unknown = http.post("/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
        wrong = http.post("/api/auth/login", json={"email": "dee@example.com", "password": "nope-nope-1"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["error"]["message"] == wrong.json()["error"]["message"]


def test_me_lists_memberships_and_permissions(broker):
    answer = signup(broker, "eve@example.com")
    with broker.client() as http:
        me = http.get("/api/auth/me", headers=bearer(answer["access_token"]))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["user"]["email"] == "eve@example.com" and body["role"] == "OWNER"
    assert {"USE_AI_BROKER", "MANAGE_KEYS", "MANAGE_BILLING", "VIEW_USAGE", "MANAGE_MEMBERS"} <= set(body["permissions"])
    assert [m["role"] for m in body["memberships"]] == ["OWNER"]


def test_bad_and_expired_tokens_are_401(broker):
    with broker.client() as http:
        forged = jwt.encode({"sub": "usr_x", "iss": "aibroker", "typ": "access", "exp": 9999999999}, "wrong-key-" * 4, algorithm="HS256")
        response = http.get("/api/keys", headers=bearer(forged))
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_token"
        expired = jwt.encode({"sub": "usr_x", "iss": "aibroker", "typ": "access", "exp": 1}, "k" * 32, algorithm="HS256")
        assert http.get("/api/keys", headers=bearer(expired)).status_code == 401


def test_jwt_works_where_api_keys_do_with_the_role_applied(broker, upstream):
    owner = signup(broker, "fay@example.com", organization_name="Fay Co")
    org_id = owner["organization"]["id"]
    with broker.client() as http:
        created = http.post("/api/keys", json={"name": "ci"}, headers=bearer(owner["access_token"]))
        assert created.status_code == 201, created.text
        usage = http.get("/api/ai/usage", headers=bearer(owner["access_token"]))
        assert usage.status_code == 200, usage.text
        # Invite an agent... the FREE plan allows one user: the limit is named.
        full = http.post(f"/api/organizations/{org_id}/invitations", json={"email": "gus@example.com", "role": "MEMBER"},
                         headers=bearer(owner["access_token"]))
    assert full.status_code == 403 and full.json()["error"]["code"] == "plan_limit_max_users"
    assert "max_users" in full.json()["error"]["message"]


def test_api_key_lacks_billing_and_member_permissions(broker):
    org = broker.create_org("Keyed")
    with broker.client(org["api_key"]) as http:
        billing = http.post("/api/payments/checkout", json={"amount": "10", "successUrl": "https://a.example/ok", "cancelUrl": "https://a.example/no"})
        members = http.get(f"/api/organizations/{org['organization_id']}/members")
        keys = http.get("/api/keys")
    assert billing.status_code == 403 and billing.json()["error"]["permission"] == "MANAGE_BILLING"
    assert members.status_code == 403 and members.json()["error"]["permission"] == "MANAGE_MEMBERS"
    assert keys.status_code == 200

"""Invitations by e-mail token, roles applied to the invited user, plan user limits."""

from __future__ import annotations

from sqlalchemy import update

from aibroker.models import Event, Invitation, Membership, Organization
from tests.support.accounts import PASSWORD, bearer, signup


def _set_plan(broker, org_id: str, plan: str) -> None:
    with broker.db.begin() as conn:
        conn.execute(update(Organization).where(Organization.id == org_id).values(plan=plan))


def test_invite_accept_and_role_permissions(broker):
    owner = signup(broker, "owner@example.com", organization_name="Team")
    org_id = owner["organization"]["id"]
    _set_plan(broker, org_id, "starter")
    with broker.client() as http:
        made = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                         json={"email": "Agent@Example.com", "role": "agent", "accept_url": "https://app.example/join"})
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        accepted = http.post("/api/invitations/accept", json={"token": token, "password": "field-pass-2024", "name": "Agent"})
        assert accepted.status_code == 200, accepted.text
        agent_token = accepted.json()["access_token"]
        again = http.post("/api/invitations/accept", json={"token": token, "password": "field-pass-2024"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "invitation_used"
        # The AGENT role: AI and usage yes; keys, members, billing no.
        assert http.get("/api/ai/usage", headers=bearer(agent_token)).status_code == 200
        denied = http.post("/api/keys", json={"name": "x"}, headers=bearer(agent_token))
        assert denied.status_code == 403 and denied.json()["error"]["permission"] == "MANAGE_KEYS"
        assert http.get(f"/api/organizations/{org_id}/members", headers=bearer(agent_token)).status_code == 403
        members = http.get(f"/api/organizations/{org_id}/members", headers=bearer(owner["access_token"])).json()["data"]
    assert sorted(m["role"] for m in members) == ["AGENT", "OWNER"]
    [invitation] = broker.rows(Invitation)
    assert invitation.token_hash != token and invitation.accepted_at is not None
    [event] = broker.rows(Event, Event.type == "invitation.created")
    # The stored payload never holds the token: the link is sealed for the webhook alone.
    assert event.organization_id == org_id and event.payload["has_link"] is True and "link" not in event.payload
    assert token not in str(event.payload) and token.encode() not in bytes(event.sealed_payload)


def test_invitation_rules(broker):
    owner = signup(broker, "o2@example.com", organization_name="Team Two")
    org_id = owner["organization"]["id"]
    _set_plan(broker, org_id, "starter")
    with broker.client() as http:
        owner_role = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                               json={"email": "x@example.com", "role": "OWNER"})
        unknown_role = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                                 json={"email": "x@example.com", "role": "KING"})
        bad_url = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                            json={"email": "x@example.com", "accept_url": "javascript:alert(1)"})
        bogus = http.post("/api/invitations/accept", json={"token": "abi_nope", "password": PASSWORD})
        made = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                         json={"email": "new@example.com", "role": "MEMBER"}).json()
        weak = http.post("/api/invitations/accept", json={"token": made["token"], "password": "short"})
    assert owner_role.status_code == 400 and unknown_role.status_code == 400
    assert bad_url.status_code == 400 and bad_url.json()["error"]["param"] == "accept_url"
    assert bogus.status_code == 404
    assert weak.status_code == 400 and weak.json()["error"]["code"] == "password_too_short"
    assert len(broker.rows(Membership, Membership.organization_id == org_id)) == 1  # nothing half-written

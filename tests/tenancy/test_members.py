"""Member management (issue 17): change a role, remove a member or leave, list and revoke
pending invitations; the OWNER/ADMIN rules, the last OWNER, sessions ended at once, events."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import update

from aibroker.models import Event, Membership, Organization, RefreshToken
from tests.support.accounts import bearer, signup
from tests.support.broker import BrokerServer

PASS = "member-pass-2024"


def _set_plan(broker, org_id: str, plan: str = "professional") -> None:
    with broker.db.begin() as conn:
        conn.execute(update(Organization).where(Organization.id == org_id).values(plan=plan))


def _join(broker, owner: dict, email: str, role: str) -> dict:
    """Invite `email` as `role` (by the owner) and accept: the new member's ids and tokens."""
    org_id = owner["organization"]["id"]
    with broker.client() as http:
        made = http.post(f"/api/organizations/{org_id}/invitations", json={"email": email, "role": role},
                         headers=bearer(owner["access_token"]))
        assert made.status_code == 201, made.text
        accepted = http.post("/api/invitations/accept", json={"token": made.json()["token"], "password": PASS, "name": email})
    assert accepted.status_code == 200, accepted.text
    return accepted.json()


@pytest.fixture
def team(broker):
    owner = signup(broker, "boss@example.com", organization_name="Team")
    _set_plan(broker, owner["organization"]["id"])
    admin = _join(broker, owner, "admin@example.com", "ADMIN")
    agent = _join(broker, owner, "agent@example.com", "AGENTE")
    return {"org": owner["organization"]["id"], "owner": owner, "admin": admin, "agent": agent}


def _patch(broker, team, who: str, user_id: str, role: str):
    with broker.client() as http:
        return http.patch(f"/api/organizations/{team['org']}/members/{user_id}", json={"role": role},
                          headers=bearer(team[who]["access_token"]))


def _delete(broker, team, who: str, user_id: str):
    with broker.client() as http:
        return http.delete(f"/api/organizations/{team['org']}/members/{user_id}", headers=bearer(team[who]["access_token"]))


def _uid(team, who: str) -> str:
    return team[who]["user"]["id"] if who == "owner" else team[who]["user_id"]


def _roles(broker, org_id: str) -> dict[str, str]:
    return {m.user_id: m.role for m in broker.rows(Membership, Membership.organization_id == org_id)}


def _error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


def test_an_owner_changes_roles_with_spanish_names_answered_canonically(broker, team):
    agent = _uid(team, "agent")
    assert _roles(broker, team["org"])[agent] == "AGENT"  # invited as AGENTE
    changed = _patch(broker, team, "owner", agent, "distribuidor")
    assert changed.status_code == 200 and changed.json()["role"] == "DISTRIBUTOR", changed.text
    promoted = _patch(broker, team, "owner", agent, "PROPIETARIO")
    assert promoted.json()["role"] == "OWNER"
    assert _roles(broker, team["org"])[agent] == "OWNER"
    events = [(e.payload["old_role"], e.payload["role"]) for e in sorted(
        broker.rows(Event, Event.type == "member.role_changed", Event.organization_id == team["org"]), key=lambda e: e.id)]
    assert events == [("AGENT", "DISTRIBUTOR"), ("DISTRIBUTOR", "OWNER")]
    # Now two owners: the first may step down.
    assert _patch(broker, team, "owner", _uid(team, "owner"), "ADMIN").json()["role"] == "ADMIN"


def test_the_bad_inputs_of_member_changes(broker, team):
    _error(_patch(broker, team, "owner", _uid(team, "agent"), "KING"), 400, "unknown_role")
    _error(_patch(broker, team, "owner", "usr_stranger", "AGENT"), 404, "not_a_member")
    _error(_delete(broker, team, "owner", "usr_stranger"), 404, "not_a_member")
    stranger = signup(broker, "stranger@example.com", organization_name="Elsewhere")
    _error(_patch(broker, team, "owner", stranger["user"]["id"], "AGENT"), 404, "not_a_member")
    # The last OWNER: neither demoted nor gone (leaving or removed by the platform).
    _error(_patch(broker, team, "owner", _uid(team, "owner"), "ADMIN"), 409, "last_owner")
    _error(_delete(broker, team, "owner", _uid(team, "owner")), 409, "last_owner")
    with broker.admin() as platform:
        removed = platform.delete(f"/api/organizations/{team['org']}/members/{_uid(team, 'owner')}",
                                  headers={"x-organization-id": team["org"]})
    _error(removed, 409, "last_owner")
    # An ADMIN cannot remove or demote an OWNER, nor grant ADMIN or OWNER, nor touch another ADMIN.
    _error(_delete(broker, team, "admin", _uid(team, "owner")), 403, "role_not_allowed")
    _error(_patch(broker, team, "admin", _uid(team, "owner"), "AGENT"), 403, "role_not_allowed")
    _error(_patch(broker, team, "admin", _uid(team, "agent"), "ADMIN"), 403, "role_not_allowed")
    _error(_patch(broker, team, "admin", _uid(team, "agent"), "OWNER"), 403, "role_not_allowed")
    # An AGENT manages nobody.
    _error(_patch(broker, team, "agent", _uid(team, "agent"), "OWNER"), 403, "permission_denied")
    _error(_delete(broker, team, "agent", _uid(team, "admin")), 403, "permission_denied")
    with broker.client() as http:
        body = http.patch(f"/api/organizations/{team['org']}/members/{_uid(team, 'agent')}", json={"role": 7},
                          headers=bearer(team["owner"]["access_token"]))
    assert body.status_code == 422
    assert _roles(broker, team["org"]) == {_uid(team, "owner"): "OWNER", _uid(team, "admin"): "ADMIN", _uid(team, "agent"): "AGENT"}


def test_an_admin_manages_lower_roles(broker, team):
    agent = _uid(team, "agent")
    assert _patch(broker, team, "admin", agent, "MEMBER").json()["role"] == "MEMBER"
    assert _patch(broker, team, "admin", agent, "DISTRIBUTOR").json()["role"] == "DISTRIBUTOR"
    removed = _delete(broker, team, "admin", agent)
    assert removed.status_code == 200 and removed.json() == {"user_id": agent, "removed": True, "left": False, "role": "DISTRIBUTOR"}
    [event] = broker.rows(Event, Event.type == "member.removed")
    assert event.payload["user_id"] == agent and event.payload["removed_by"] == _uid(team, "admin")


def test_a_removed_member_loses_access_and_refresh_tokens_at_once(broker, team):
    agent = team["agent"]
    with broker.client() as http:
        assert http.get("/api/ai/usage", headers=bearer(agent["access_token"])).status_code == 200  # cached principal now
        assert _delete(broker, team, "owner", agent["user_id"]).status_code == 200
        after = http.get("/api/ai/usage", headers=bearer(agent["access_token"]))
        refreshed = http.post("/api/auth/refresh", json={"refresh_token": agent["refresh_token"]})
    assert after.status_code == 403 and after.json()["error"]["code"] == "no_organization", after.text
    assert refreshed.status_code == 401, refreshed.text
    assert all(t.revoked_at is not None for t in broker.rows(RefreshToken, RefreshToken.user_id == agent["user_id"]))
    assert agent["user_id"] not in _roles(broker, team["org"])


def test_a_removed_member_is_refused_at_once_by_every_process(broker, team):
    """Another broker process on the same database had just served the member: it refuses the
    member's token as soon as the removal commits, not after a cache expires."""
    other = BrokerServer(broker.database_url)
    other.start()
    try:
        agent = team["agent"]
        with other.client() as elsewhere:
            assert elsewhere.get("/api/ai/usage", headers=bearer(agent["access_token"])).status_code == 200
            assert _delete(broker, team, "owner", agent["user_id"]).status_code == 200
            after = elsewhere.get("/api/ai/usage", headers=bearer(agent["access_token"]))
            demoted = _patch(broker, team, "owner", _uid(team, "admin"), "AGENT")
            assert demoted.status_code == 200, demoted.text
            admin_now = elsewhere.get(f"/api/organizations/{team['org']}/invitations", headers=bearer(team["admin"]["access_token"]))
    finally:
        other.stop()
    assert after.status_code == 403 and after.json()["error"]["code"] == "no_organization", after.text
    assert admin_now.status_code == 403, admin_now.text  # the former ADMIN lost the right at once


def test_a_member_of_two_organizations_removed_from_one_keeps_the_other(broker, team):
    other = signup(broker, "other-boss@example.com", organization_name="Other")
    _set_plan(broker, other["organization"]["id"])
    with broker.client() as http:
        made = http.post(f"/api/organizations/{other['organization']['id']}/invitations", json={"email": "agent@example.com", "role": "AGENT"},
                         headers=bearer(other["access_token"]))
        joined = http.post("/api/invitations/accept", json={"token": made.json()["token"], "password": PASS})
        assert joined.status_code == 200, joined.text
        assert _delete(broker, team, "owner", _uid(team, "agent")).status_code == 200
        token = team["agent"]["access_token"]
        gone = http.get("/api/ai/usage", headers=bearer(token, **{"x-organization-id": team["org"]}))
        kept = http.get("/api/ai/usage", headers=bearer(token, **{"x-organization-id": other["organization"]["id"]}))
        refreshed = http.post("/api/auth/refresh", json={"refresh_token": team["agent"]["refresh_token"]})
    _error(gone, 403, "not_a_member")
    assert kept.status_code == 200 and refreshed.status_code == 200


def test_leaving_oneself_and_the_last_owner_cannot_leave(broker, team):
    left = _delete(broker, team, "agent", _uid(team, "agent"))  # an AGENT has no MANAGE_MEMBERS, yet may leave
    assert left.status_code == 200 and left.json()["left"] is True, left.text
    [event] = broker.rows(Event, Event.type == "member.left")
    assert event.payload == {"user_id": _uid(team, "agent"), "role": "AGENT", "removed_by": None, "sessions_revoked": 1}
    _error(_delete(broker, team, "owner", _uid(team, "owner")), 409, "last_owner")
    assert _patch(broker, team, "owner", _uid(team, "admin"), "OWNER").status_code == 200
    assert _delete(broker, team, "owner", _uid(team, "owner")).status_code == 200  # another OWNER remains
    assert _roles(broker, team["org"]) == {_uid(team, "admin"): "OWNER"}


def test_pending_invitations_listed_without_tokens_and_revoked(broker, team):
    org = team["org"]
    with broker.client() as http:
        owner = bearer(team["owner"]["access_token"])
        made = http.post(f"/api/organizations/{org}/invitations", json={"email": "later@example.com", "role": "distribuidor"}, headers=owner)
        assert made.status_code == 201 and made.json()["role"] == "DISTRIBUTOR", made.text
        admin_inv = http.post(f"/api/organizations/{org}/invitations", json={"email": "boss2@example.com", "role": "ADMIN"}, headers=owner).json()
        listed = http.get(f"/api/organizations/{org}/invitations", headers=bearer(team["admin"]["access_token"]))
        assert listed.status_code == 200, listed.text
        assert [(i["email"], i["role"]) for i in listed.json()["data"]] == [("later@example.com", "DISTRIBUTOR"), ("boss2@example.com", "ADMIN")]
        assert made.json()["token"] not in listed.text and admin_inv["token"] not in listed.text and "token" not in listed.json()["data"][0]
        assert http.get(f"/api/organizations/{org}/invitations", headers=bearer(team["agent"]["access_token"])).status_code == 403
        # An ADMIN invitation is the OWNER's to revoke.
        _error(http.delete(f"/api/organizations/{org}/invitations/{admin_inv['id']}", headers=bearer(team["admin"]["access_token"])),
               403, "role_not_allowed")
        revoked = http.delete(f"/api/organizations/{org}/invitations/{made.json()['id']}", headers=bearer(team["admin"]["access_token"]))
        assert revoked.status_code == 200 and revoked.json() == {"id": made.json()["id"], "revoked": True}
        again = http.delete(f"/api/organizations/{org}/invitations/{made.json()['id']}", headers=owner)
        _error(again, 404, "invitation_not_found")
        accept = http.post("/api/invitations/accept", json={"token": made.json()["token"], "password": PASS})
        _error(accept, 404, "invalid_invitation")
        remaining = http.get(f"/api/organizations/{org}/invitations", headers=owner).json()["data"]
    assert [i["id"] for i in remaining] == [admin_inv["id"]]
    [event] = broker.rows(Event, Event.type == "invitation.revoked")
    assert event.payload["invitation_id"] == made.json()["id"] and made.json()["token"] not in str(event.payload)
    # No member-management event carries a token of any kind.
    for e in broker.rows(Event, Event.organization_id == org):
        assert "abi_" not in str(e.payload) and "abr_" not in str(e.payload)


def test_another_organizations_credentials_cannot_manage_members(broker, team):
    other = signup(broker, "intruder@example.com", organization_name="Intruder")
    with broker.client() as http:
        headers = bearer(other["access_token"])
        patched = http.patch(f"/api/organizations/{team['org']}/members/{_uid(team, 'agent')}", json={"role": "MEMBER"}, headers=headers)
        removed = http.delete(f"/api/organizations/{team['org']}/members/{_uid(team, 'agent')}", headers=headers)
        listed = http.get(f"/api/organizations/{team['org']}/invitations", headers=headers)
    for response in (patched, removed, listed):
        _error(response, 403, "not_a_member")
    assert _roles(broker, team["org"])[_uid(team, "agent")] == "AGENT"


def test_two_owners_stepping_down_at_once_leave_one_owner(broker, team):
    assert _patch(broker, team, "owner", _uid(team, "admin"), "OWNER").status_code == 200
    barrier = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def step_down(who: str) -> None:
        barrier.wait()
        statuses[who] = _patch(broker, team, who, _uid(team, who), "AGENT").status_code

    threads = [threading.Thread(target=step_down, args=(who,)) for who in ("owner", "admin")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses.values()) == [200, 409], statuses
    assert list(_roles(broker, team["org"]).values()).count("OWNER") == 1

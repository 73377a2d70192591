"""The platform admin suspends, cancels and reactivates an organization, or changes its plan."""

from __future__ import annotations

CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "still there?"}]}


def test_suspend_cancel_and_reactivate(broker):
    org = broker.create_org("Tenant", plan="unlimited")
    path = f"/api/admin/organizations/{org['organization_id']}"
    with broker.admin() as admin, broker.client(org["api_key"]) as tenant:
        assert tenant.post("/v1/chat/completions", json=CHAT).status_code == 200
        for status in ("suspended", "cancelled"):
            changed = admin.patch(path, json={"status": status})
            assert changed.status_code == 200 and changed.json()["status"] == status
            refused = tenant.post("/v1/chat/completions", json=CHAT)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "organization_inactive"
        reactivated = admin.patch(path, json={"status": "active", "plan": "STARTER"}).json()
        assert (reactivated["status"], reactivated["plan"]) == ("active", "starter")
        assert tenant.post("/v1/chat/completions", json=CHAT).status_code == 200
        listed = {o["id"]: o for o in admin.get("/api/admin/organizations").json()["data"]}
        assert (listed[org["organization_id"]]["status"], listed[org["organization_id"]]["plan"]) == ("active", "starter")


def test_bad_changes_are_clear_client_errors_and_change_nothing(broker):
    org = broker.create_org("Tenant", plan="unlimited")
    path = f"/api/admin/organizations/{org['organization_id']}"
    with broker.admin() as admin, broker.client(org["api_key"]) as tenant:
        assert admin.patch(path, json={"status": "frozen"}).status_code in (400, 422)
        unknown_plan = admin.patch(path, json={"plan": "platinum", "status": "suspended"})
        assert unknown_plan.status_code == 400 and unknown_plan.json()["error"]["code"] == "unknown_plan"
        assert admin.patch("/api/admin/organizations/org_missing", json={"status": "active"}).status_code == 404
        assert tenant.patch(path, json={"status": "active"}).status_code in (401, 403)  # not the tenant's to do
        [row] = [o for o in admin.get("/api/admin/organizations").json()["data"] if o["id"] == org["organization_id"]]
        assert (row["status"], row["plan"]) == ("active", "unlimited")  # the refused change left it as it was

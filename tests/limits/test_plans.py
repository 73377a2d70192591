"""Plans as data: defaults, admin CRUD, CLI, org creation validation, per-plan margin."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aibroker.models import UsageRecord


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIBROKER_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "aibroker.cli", *args], capture_output=True, text=True, env=env, timeout=60)


def test_default_plans_exist_with_seed_limits(broker):
    with broker.admin() as admin:
        plans = {p["slug"]: p for p in admin.get("/api/admin/plans").json()["data"]}
    assert set(plans) >= {"free", "starter", "professional", "enterprise", "unlimited"}
    assert [plans[s]["requests_per_hour"] for s in ("free", "starter", "professional", "enterprise")] == [10, 100, 1000, 10000]
    assert [plans[s]["max_users"] for s in ("free", "starter", "professional", "enterprise")] == [1, 5, 20, 100]
    unlimited = plans["unlimited"]
    assert all(unlimited[f] is None for f in ("requests_per_minute", "requests_per_hour", "tokens_per_minute", "monthly_token_quota"))


def test_custom_plan_crud_and_org_on_it(broker):
    with broker.admin() as admin:
        created = admin.post("/api/admin/plans", json={"slug": "team", "name": "Team", "requests_per_minute": 7, "margin_bps": 1000})
        assert created.status_code == 201, created.text
        assert admin.post("/api/admin/plans", json={"slug": "team", "name": "Again"}).status_code == 409
        assert admin.post("/api/admin/plans", json={"slug": "Bad Slug!", "name": "x"}).status_code == 400
        org = broker.create_org("Teamco", plan="team")
        assert org["plan"] == "team"
        assert admin.delete("/api/admin/plans/team").status_code == 409  # an organization is on it
        patched = admin.patch("/api/admin/plans/team", json={"requests_per_minute": None, "tokens_per_minute": 5000})
        assert patched.json()["requests_per_minute"] is None and patched.json()["tokens_per_minute"] == 5000
        assert admin.delete("/api/admin/plans/free").status_code == 409  # defaults are edited, not deleted
        bad = admin.post("/api/admin/organizations", json={"name": "Nope", "plan": "platinum"})
        assert bad.status_code == 400 and "unknown plan 'platinum'" in bad.json()["error"]["message"]


def test_plan_margin_applies_unless_the_org_overrides(broker, upstream):
    with broker.admin() as admin:
        admin.post("/api/admin/plans", json={"slug": "thin", "name": "Thin", "margin_bps": 1000})
    org = broker.create_org("Thin Co", plan="thin")
    with broker.client(org["api_key"]) as client:
        response = client.post("/v1/chat/completions", json={"model": "mock-chat", "messages": [{"role": "user", "content": "hello there broker"}]})
    assert response.status_code == 200, response.text
    broker.flush()
    [row] = broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    # 18 micros of provider cost x 1.10 = 19.8 -> 20 (the default 30% would give 24)
    assert (row.margin_bps, row.billed_cost_micros) == (1000, 20)


@pytest.mark.parametrize("plan", ["starter", "unlimited"])
def test_cli_org_create_validates_plan_and_plan_list_json(database_url, plan):
    done = _cli(database_url, "org", "create", f"Cli {plan}", "--plan", plan, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["plan"] == plan
    refused = _cli(database_url, "org", "create", "Cli bad", "--plan", "gold")
    assert refused.returncode == 1 and "unknown plan 'gold'" in refused.stderr
    listed = _cli(database_url, "plan", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    plans = {p["slug"]: p for p in json.loads(listed.stdout)}
    assert plans[plan]["organizations"] == 1 and plans["free"]["requests_per_hour"] == 10

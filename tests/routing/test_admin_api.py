"""The routing admin API: CRUD for every table, validation at write time, the full matrix,
and the dry-run resolve (precedence and expiry with a frozen clock)."""

from __future__ import annotations

import datetime as dt

import pytest

BASE = "/api/admin/routing"


@pytest.fixture
def admin(broker):
    with broker.admin() as client:
        client.put(f"{BASE}/vocabulary", json={"plans": ["free", "professional"], "profiles": ["usuaria"]}).raise_for_status()
        yield client


def _create(admin, path, body, status=201):
    response = admin.post(f"{BASE}/{path}", json=body)
    assert response.status_code == status, response.text
    return response.json()


def _resolve(admin, **body):
    response = admin.post(f"{BASE}/resolve", json={"plan": "free", "feature": "resumo", "profile": "default", **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_admin_routes_need_the_platform_key(broker):
    org = broker.create_org("Tenant", plan="free")
    with broker.client(org["api_key"]) as tenant, broker.client() as anonymous:
        assert tenant.get(f"{BASE}/matrix").status_code == 401
        assert anonymous.post(f"{BASE}/resolve", json={"plan": "free", "feature": "x"}).status_code == 401


def test_crud_every_table_and_the_full_matrix(admin):
    mock = _create(admin, "providers", {"slug": "mock", "display_name": "Mock", "default_model": "mock-chat"})
    openai = _create(admin, "providers", {"slug": "openai", "default_model": "openai/gpt-4o-mini"})
    assert openai["default_model"] == "gpt-4o-mini" and openai["display_name"] == "openai"
    feature = _create(admin, "features", {"slug": "resumo", "name": "Resumo", "category": "analysis"})
    default = _create(admin, "feature-providers", {"feature": "resumo", "provider": "openai", "role": "analysis", "weight": 2})
    row = _create(admin, "matrix", {"plan": "FREE", "feature": "resumo", "provider": "mock", "daily_limit": 3, "monthly_limit": 30})
    assert (row["plan"], row["model"], row["profile"]) == ("free", "mock/mock-chat", "default")
    override = _create(admin, "overrides", {"group_key": "beta", "feature": "resumo", "provider": "openai"})

    full = admin.get(f"{BASE}/matrix").json()
    assert {p["slug"] for p in full["providers"]} == {"mock", "openai"}
    assert [f["slug"] for f in full["features"]] == ["resumo"]
    assert full["feature_providers"][0]["model"] == "openai/gpt-4o-mini"
    assert [(m["plan"], m["feature"], m["daily_limit"]) for m in full["matrix"]] == [("free", "resumo", 3)]
    assert full["overrides"][0]["group_key"] == "beta" and "usuaria" in full["profiles"]

    assert admin.patch(f"{BASE}/matrix/{row['id']}", json={"daily_limit": 5}).json()["daily_limit"] == 5
    assert admin.patch(f"{BASE}/feature-providers/{default['id']}", json={"weight": 3}).json()["weight"] == 3
    assert admin.patch(f"{BASE}/providers/{mock['id']}", json={"relative_cost": 0.5}).json()["relative_cost"] == 0.5
    assert admin.patch(f"{BASE}/features/{feature['id']}", json={"name": "Resumo 2"}).json()["name"] == "Resumo 2"
    assert admin.patch(f"{BASE}/overrides/{override['id']}", json={"priority": 2}).json()["priority"] == 2
    assert admin.get(f"{BASE}/providers").json()["data"][0]["slug"] == "mock"
    assert len(admin.get(f"{BASE}/overrides").json()["data"]) == 1

    assert admin.delete(f"{BASE}/overrides/{override['id']}").status_code == 204
    assert admin.delete(f"{BASE}/feature-providers/{default['id']}").status_code == 204
    assert admin.delete(f"{BASE}/matrix/{row['id']}").status_code == 204
    _create(admin, "matrix", {"plan": "free", "feature": "resumo", "provider": "mock"})
    assert admin.delete(f"{BASE}/features/{feature['id']}").status_code == 204  # takes its matrix rows along
    assert admin.get(f"{BASE}/matrix").json()["matrix"] == []
    assert admin.delete(f"{BASE}/features/{feature['id']}").status_code == 404


def test_bad_input_is_refused_at_write_time(admin):
    _create(admin, "providers", {"slug": "mock", "default_model": "mock-chat"})
    _create(admin, "providers", {"slug": "openai", "status": "disabled"})
    _create(admin, "features", {"slug": "resumo"})
    cases = [
        ("matrix", {"plan": "free", "feature": "nope", "provider": "mock"}, "unknown_feature"),
        ("matrix", {"plan": "gold", "feature": "resumo", "provider": "mock"}, "unknown_plan"),
        ("matrix", {"plan": "free", "feature": "resumo", "provider": "mock", "profile": "ghost"}, "unknown_profile"),
        ("matrix", {"plan": "free", "feature": "resumo", "provider": "nope"}, "unknown_provider"),
        ("matrix", {"plan": "free", "feature": "resumo", "provider": "mock", "model": "mock-unicorn"}, "unknown_model"),
        ("matrix", {"plan": "free", "feature": "resumo", "provider": "openai"}, "unknown_model"),  # no default model
        ("feature-providers", {"feature": "resumo", "provider": "mock", "weight": 150}, "weight_out_of_range"),
        ("feature-providers", {"feature": "resumo", "provider": "mock", "weight": -1}, "weight_out_of_range"),
        ("overrides", {"group_key": "vip", "feature": "resumo", "provider": "openai", "model": "gpt-4o"}, "provider_disabled"),
        ("providers", {"slug": "mock2", "default_model": "mock-nothing"}, "unknown_model"),
        ("features", {"slug": "votar", "mode": "consensus", "consensus_model": "mock/nope"}, "unknown_model"),
    ]
    for path, body, code in cases:
        response = admin.post(f"{BASE}/{path}", json=body)
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["error"]["code"] == code, (path, body, response.text)
    past = admin.post(f"{BASE}/overrides", json={"group_key": "old", "feature": "resumo", "provider": "mock", "valid_until": "2000-01-01T00:00:00Z"})
    assert past.status_code == 400 and past.json()["error"]["param"] == "valid_until"
    _create(admin, "matrix", {"plan": "free", "feature": "resumo", "provider": "mock"})
    assert admin.post(f"{BASE}/matrix", json={"plan": "free", "feature": "resumo", "provider": "mock"}).status_code == 409
    assert admin.post(f"{BASE}/matrix", json={"plan": "free"}).status_code == 422  # payload shape
    assert admin.post(f"{BASE}/resolve", json={"plan": "gold", "feature": "resumo"}).json()["error"]["code"] == "unknown_plan"
    assert admin.post(f"{BASE}/resolve", json={"plan": "free", "feature": "nope"}).json()["error"]["code"] == "unknown_feature"
    assert admin.get(f"{BASE}/matrix").json()["overrides"] == []  # nothing half-written


def test_precedence_user_then_group_then_plan_then_defaults_and_expiry(admin, broker):
    from aibroker.kit.clock import set_clock
    from tests.routing.conftest import Clock

    clock = Clock(dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC))
    set_clock(clock)
    try:
        _create(admin, "providers", {"slug": "mock", "default_model": "mock-chat"})
        _create(admin, "providers", {"slug": "openai", "default_model": "gpt-4o-mini"})
        _create(admin, "features", {"slug": "resumo"})
        _create(admin, "features", {"slug": "livre"})
        _create(admin, "feature-providers", {"feature": "resumo", "provider": "mock", "model": "mock-text", "role": "generation", "weight": 5})
        _create(admin, "feature-providers", {"feature": "livre", "provider": "mock", "model": "mock-text", "weight": 5})
        _create(admin, "matrix", {"plan": "free", "feature": "resumo", "provider": "mock", "daily_limit": 3})
        _create(admin, "overrides", {"group_key": "black_friday", "base_plan": "free", "feature": "resumo", "provider": "openai",
                                     "valid_until": "2026-11-28T03:00:00Z"})
        _create(admin, "overrides", {"group_key": "black_friday", "base_plan": "professional", "feature": "resumo", "provider": "mock", "model": "mock-slow"})
        _create(admin, "overrides", {"user_id": "ana", "feature": "resumo", "provider": "mock", "model": "mock-vote-a"})

        plain = _resolve(admin)
        assert set(plain) >= {"allowed", "reason", "candidates"}
        assert set(plain["candidates"][0]) == {"provider", "model", "role", "weight", "daily_limit", "monthly_limit", "origin"}
        assert [c["model"] for c in plain["candidates"]] == ["mock/mock-chat"]  # defaults only when the plan has no provider
        assert plain["candidates"][0]["role"] == "generation" and plain["candidates"][0]["weight"] == 5  # from mock's default row
        both = _resolve(admin, group="black_friday", user_id="ana")
        assert both["allowed"] and both["reason"] == "user_override"
        assert [(c["model"], c["origin"]) for c in both["candidates"]] == [
            ("mock/mock-vote-a", "user_override"), ("openai/gpt-4o-mini", "group_override"), ("mock/mock-chat", "default"),
        ]
        assert both["candidates"][1]["daily_limit"] == 3  # the plan's limits still apply
        assert [c["model"] for c in _resolve(admin, group="black_friday")["candidates"]][0] == "openai/gpt-4o-mini"
        assert _resolve(admin, plan="professional")["reason"] == "feature_not_in_plan"
        assert _resolve(admin, plan="professional", group="black_friday")["candidates"][0]["model"] == "mock/mock-slow"
        assert _resolve(admin, feature="livre")["candidates"][0]["origin"] == "feature_default"

        clock.set(dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC))  # the group override expires now
        assert [c["model"] for c in _resolve(admin, group="black_friday", user_id="ana")["candidates"]] == [
            "mock/mock-vote-a", "mock/mock-chat",
        ]
        # A disabled provider drops out everywhere; nothing left: refused with the reason.
        [mock] = [p for p in admin.get(f"{BASE}/providers").json()["data"] if p["slug"] == "mock"]
        admin.patch(f"{BASE}/providers/{mock['id']}", json={"status": "disabled"}).raise_for_status()
        gone = _resolve(admin, user_id="ana")
        assert (gone["allowed"], gone["reason"], gone["candidates"]) == (False, "no_active_provider", [])
    finally:
        set_clock(None)


def test_resolve_with_an_organization_checks_its_limits(routed):
    org = routed.create_org("Free", plan="free")
    with routed.client(org["api_key"]) as client:
        for _ in range(3):
            client.post("/v1/chat/completions", headers={"x-aibroker-feature": "resumo"},
                        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).raise_for_status()
    routed.flush()
    with routed.admin() as admin:
        answer = admin.post(f"{BASE}/resolve", json={"plan": "free", "feature": "resumo", "organization_id": org["organization_id"]}).json()
    assert (answer["allowed"], answer["reason"]) == (False, "daily_limit_reached")
    assert answer["usage"]["today"] == 3

"""The routing matrix in the gateway: candidates as the fallback chain, 403 without plan
access, explicit models checked, unrouted requests exactly as a fresh install."""

from __future__ import annotations

from aibroker.models import UsageRecord
from tests.routing.conftest import as_platform, routing_key


def _chat(client, *, feature=None, model="auto", headers=None, **body):
    extra = {"x-aibroker-feature": feature} if feature else {}
    return client.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hello there"}], **body},
        headers={**extra, **(headers or {})},
    )


def test_request_without_feature_or_routing_rows_uses_the_default_router(routed):
    org = routed.create_org("Plain", plan="free")
    with routed.client(org["api_key"]) as client:
        plain = _chat(client, model="mock-chat")
        auto = _chat(client)  # "auto" without a routed feature: the platform default model
        unknown_feature = _chat(client, feature="not_configured", model="mock-text")
    assert plain.status_code == auto.status_code == unknown_feature.status_code == 200, plain.text
    assert plain.headers["x-aibroker-model"] == "mock/mock-chat"
    assert auto.headers["x-aibroker-model"] == "openai/gpt-4o-mini"  # the platform default (OpenAI is configured)
    assert unknown_feature.headers["x-aibroker-model"] == "mock/mock-text"


def test_plan_without_access_is_refused_with_the_reason(routed):
    org = routed.create_org("Free", plan="free")
    with routed.client(org["api_key"]) as client:
        response = _chat(client, feature="juridico")
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["type"], error["code"], error["feature"]) == ("permission_error", "feature_not_in_plan", "juridico")
    assert "free" in error["message"]


def test_explicit_model_passes_the_matrix_access_check(routed):
    org = routed.create_org("Free", plan="free")
    with routed.client(org["api_key"]) as client:
        allowed = _chat(client, feature="resumo", model="mock-chat")
        refused = _chat(client, feature="resumo", model="mock-text")
        body_feature = client.post(
            "/v1/chat/completions",
            json={"model": "mock-text", "feature": "resumo", "messages": [{"role": "user", "content": "x"}]},
        )
    assert allowed.status_code == 200 and allowed.headers["x-aibroker-model"] == "mock/mock-chat"
    assert refused.status_code == body_feature.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"
    assert refused.json()["error"]["allowed_models"] == ["mock/mock-chat"]


def test_routing_order_is_the_fallback_chain(routed):
    org = routed.create_org("Pro", plan="professional")
    with routed.client(org["api_key"]) as client:
        response = _chat(client, feature="resumo")
    assert response.status_code == 200, response.text
    assert response.headers["x-aibroker-model"] == "mock/mock-chat"  # mock-down (first) failed
    routed.flush()
    rows = routed.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    assert {(r.model, r.status) for r in rows} >= {("mock/mock-down", "error"), ("mock/mock-chat", "success")}
    assert all(r.feature == "resumo" for r in rows)


def test_broker_endpoint_routes_by_usage_type(routed):
    org = routed.create_org("Pro", plan="professional")
    with routed.client(org["api_key"]) as client:
        response = client.post("/api/ai/broker", json={"prompt": "summarise this", "usageType": "resumo"})
        refused = client.post("/api/ai/broker", json={"prompt": "x", "usageType": "juridico", "model": "mock-chat"})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "mock/mock-chat"
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"


def test_profile_header_selects_rows_and_unknown_profiles_are_refused(routed):
    org = routed.create_org("Free", plan="free")
    with routed.client() as client:
        unknown = _chat(client, feature="resumo", headers=as_platform(org["organization_id"], **{"x-aibroker-profile": "nobody"}))
    with routed.client(routing_key(routed, org["organization_id"], profiles=["admin"])) as client:  # a tenant key the platform allowed
        admin = [_chat(client, feature="resumo", headers={"x-aibroker-profile": "admin"}) for _ in range(4)]
        # body `profile` works too, and is not sent upstream
        body_profile = _chat(client, feature="resumo", profile="admin")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_profile"
    assert [r.status_code for r in admin] == [200] * 4  # the admin rows have no limits
    assert "x-aibroker-feature-remaining-day" not in admin[0].headers
    assert body_profile.status_code == 200


def test_feature_without_key_providers_answers_a_clear_503(routed, tmp_path):
    from tests.routing.conftest import load_yaml

    load_yaml(routed, tmp_path, """
        providers: [{slug: gemini, display_name: Gemini, default_model: gemini-2.5-flash}]
        features: [{slug: visao, name: Visao}]
        matrix: [{plan: free, feature: visao, provider: gemini}]
    """)
    org = routed.create_org("Free", plan="free")
    with routed.client(org["api_key"]) as client:
        response = _chat(client, feature="visao")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_available_provider"

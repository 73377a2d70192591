"""Feature, profile and group are read the same way on every chat route (/api/ai/broker and
/v1/messages as on /v1/chat/completions), and consensus features vote on all of them."""

from __future__ import annotations

import anthropic
import pytest

from aibroker.models import UsageRecord
from tests.routing.conftest import as_platform, routing_key

QUESTION = {"role": "user", "content": "Is this review positive or negative?"}


@pytest.fixture
def pro_sdk(routed):
    org = routed.create_org("Pro", plan="professional")
    return org, anthropic.Anthropic(base_url=routed.url, api_key=org["api_key"], max_retries=0)


def _key(client, **fields):
    created = client.post("/api/keys", json={"name": "scoped", **fields})
    assert created.status_code == 201, created.text
    return created.json()["key"]


def _ask(client, headers=None, **body):
    return client.post("/api/ai/broker", json={"prompt": "summarise this", **body}, headers=headers or {})


def _message(client, headers=None, **body):
    payload = {"model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": "summarise this"}], **body}
    return client.post("/v1/messages", json=payload, headers=headers or {})


def _rows(broker, org_id):
    broker.flush()
    return broker.rows(UsageRecord, UsageRecord.organization_id == org_id)


def _beta_override(broker):
    """Group `beta` on the free plan gets mock-text for `resumo` (the plan matrix says mock-chat)."""
    with broker.admin() as admin:
        created = admin.post("/api/admin/routing/overrides", json={
            "group_key": "beta", "base_plan": "free", "feature": "resumo", "provider": "mock", "model": "mock-text",
        })
    assert created.status_code == 201, created.text


def test_broker_api_feature_precedence_header_then_body_then_key_default(routed, clock):
    org = routed.create_org("Free", plan="free")  # free: resumo (3 a day), no juridico
    with routed.client(org["api_key"]) as client:
        juridico_key = _key(client, default_feature="juridico")
        unnamed = _ask(client, model="mock-chat")
        header_wins = _ask(client, headers={"x-aibroker-feature": "juridico"}, usageType="resumo")
        feature_field = _ask(client, feature="resumo")
        disagreeing = _ask(client, usageType="resumo", feature="juridico")
    with routed.client(juridico_key) as client:
        key_default = _ask(client)
        body_beats_default = _ask(client, usageType="resumo")
    assert unnamed.status_code == 200, unnamed.text
    assert header_wins.status_code == key_default.status_code == 403
    for refused in (header_wins, key_default):
        assert (refused.json()["error"]["code"], refused.json()["error"]["feature"]) == ("feature_not_in_plan", "juridico")
    assert feature_field.status_code == body_beats_default.status_code == 200, feature_field.text
    # both routed through the matrix row of resumo (its daily limit of 3 counts them)
    assert feature_field.headers["x-aibroker-feature-remaining-day"] == "2"
    assert body_beats_default.headers["x-aibroker-feature-remaining-day"] == "1"
    assert disagreeing.status_code == 400 and "disagree" in disagreeing.json()["error"]["message"]
    features = sorted(r.feature for r in _rows(routed, org["organization_id"]))
    assert features == ["CHAT_RESPONSE", "resumo", "resumo"]  # seed 000's default when nothing names one


def test_broker_api_profile_and_group_from_headers_or_body(routed):
    _beta_override(routed)
    org = routed.create_org("Free", plan="free")
    with routed.client() as client:  # the platform's key names any profile, known or not
        unknown_header = _ask(client, headers=as_platform(org["organization_id"], **{"x-aibroker-profile": "nobody"}), usageType="resumo")
        unknown_body = _ask(client, headers=as_platform(org["organization_id"]), usageType="resumo", profile="nobody")
    with routed.client(routing_key(routed, org["organization_id"], profiles=["admin"])) as client:
        admin_profile = _ask(client, usageType="resumo", profile="admin")
    second = routed.create_org("Free 2", plan="free")["organization_id"]
    with routed.client(routing_key(routed, second, groups=["beta"])) as client:  # resumo: 3 a day
        plain = _ask(client, usageType="resumo")
        group_body = _ask(client, usageType="resumo", group="beta")
        group_header = _ask(client, headers={"x-aibroker-group": "beta"}, usageType="resumo")
    assert unknown_header.status_code == unknown_body.status_code == 400
    assert unknown_body.json()["error"]["code"] == "unknown_profile"
    assert admin_profile.status_code == 200 and "x-aibroker-feature-remaining-day" not in admin_profile.headers
    assert plain.json()["model"] == "mock/mock-chat"
    assert group_body.json()["model"] == group_header.json()["model"] == "mock/mock-text"


def test_messages_feature_from_body_or_key_default_and_profile_group(routed):
    _beta_override(routed)
    org = routed.create_org("Free", plan="free")
    with routed.client(org["api_key"]) as client:
        resumo_key = _key(client, default_feature="resumo")
        body_feature = _message(client, feature="juridico")
        bad_feature = _message(client, feature=["juridico"])
        unknown_profile = _message(client, headers=as_platform(org["organization_id"], **{
            "x-aibroker-feature": "resumo", "x-aibroker-profile": "nobody"}))
    with routed.client(routing_key(routed, org["organization_id"], groups=["beta"])) as client:
        group_body = _message(client, feature="resumo", group="beta")
        group_header = _message(client, headers={"x-aibroker-feature": "resumo", "x-aibroker-group": "beta"})
    with routed.client(resumo_key) as client:
        key_default = _message(client)
    assert body_feature.status_code == 403
    assert body_feature.json() == {"type": "error", "error": {
        "type": "permission_error", "message": body_feature.json()["error"]["message"],
        "code": "feature_not_in_plan", "feature": "juridico",
    }}
    assert bad_feature.status_code == 400 and bad_feature.json()["error"]["param"] == "feature"
    assert unknown_profile.status_code == 400 and unknown_profile.json()["error"]["code"] == "unknown_profile"
    assert group_body.headers["x-aibroker-model"] == group_header.headers["x-aibroker-model"] == "mock/mock-text"
    assert key_default.status_code == 200, key_default.text
    assert key_default.headers["x-aibroker-model"] == "mock/mock-chat"
    assert "x-aibroker-feature-remaining-day" in key_default.headers  # the free row's limit applied
    rows = _rows(routed, org["organization_id"])
    assert {(r.endpoint, r.feature) for r in rows} == {("messages", "resumo")} and len(rows) == 3


def test_broker_api_runs_consensus_with_votes_and_summed_cost(routed):
    org = routed.create_org("Pro", plan="professional")
    with routed.client(org["api_key"]) as client:
        response = _ask(client, prompt=QUESTION["content"], usageType="sentimento", aibroker={"include_votes": True})
        without_votes = _ask(client, prompt=QUESTION["content"], usageType="sentimento")
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["response"], result["model"], result["provider"]) == ("Positive.", "mock/mock-vote-a", "mock")
    assert response.headers["x-aibroker-mode"] == "consensus"
    assert [v["answer"] for v in result["aibroker"]["votes"]] == ["Positive.", "positive", "Negative!"]
    assert "aibroker" not in without_votes.json() and without_votes.json()["response"] == "Positive."
    rows = [r for r in _rows(routed, org["organization_id"]) if r.request_id == result["requestId"]]
    assert sorted(r.model for r in rows) == ["mock/mock-vote-a", "mock/mock-vote-b", "mock/mock-vote-c"]
    assert result["cost"]["finalCostMicros"] == sum(r.billed_cost_micros for r in rows) == int(response.headers["x-aibroker-cost-micros"])
    assert result["cost"]["providerCostMicros"] == sum(r.provider_cost_micros for r in rows) > 0
    assert result["stats"]["inputTokens"] == sum(r.input_tokens for r in rows)
    assert result["stats"]["attempts"] == 3


def test_messages_runs_consensus_and_refuses_to_stream_it(routed, pro_sdk):
    org, sdk = pro_sdk
    raw = sdk.messages.with_raw_response.create(
        model="auto", max_tokens=50, messages=[QUESTION],
        extra_headers={"x-aibroker-feature": "sentimento"}, extra_body={"aibroker": {"include_votes": True}},
    )
    message = raw.parse()
    assert message.type == "message" and [b.text for b in message.content] == ["Positive."]
    assert raw.headers["x-aibroker-mode"] == "consensus"
    assert len(message.model_extra["aibroker"]["votes"]) == 3
    rows = [r for r in _rows(routed, org["organization_id"]) if r.request_id == raw.headers["x-request-id"]]
    assert len(rows) == 3 and {r.endpoint for r in rows} == {"messages"}
    assert message.usage.input_tokens == sum(r.input_tokens for r in rows)
    assert message.usage.output_tokens == sum(r.output_tokens for r in rows)
    with routed.client(org["api_key"]) as client:
        streamed = _message(client, headers={"x-aibroker-feature": "sentimento"}, stream=True)
    assert streamed.status_code == 400
    error = streamed.json()
    assert (error["type"], error["error"]["type"], error["error"]["code"]) == (
        "error", "invalid_request_error", "consensus_stream_unsupported",
    )


def test_bad_aibroker_field_is_a_clear_400(routed):
    org = routed.create_org("Pro", plan="professional")
    with routed.client(org["api_key"]) as client:
        chat = client.post("/v1/chat/completions", headers={"x-aibroker-feature": "sentimento"},
                           json={"model": "auto", "messages": [QUESTION], "aibroker": True})
        messages = _message(client, headers={"x-aibroker-feature": "sentimento"}, aibroker="votes")
        broker = _ask(client, usageType="sentimento", aibroker=[1])
    assert chat.status_code == messages.status_code == broker.status_code == 400
    assert chat.json()["error"]["param"] == messages.json()["error"]["param"] == "aibroker"


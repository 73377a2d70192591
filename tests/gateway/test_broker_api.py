"""Seed 000's broker API and its client library, against a running broker."""

from __future__ import annotations

import pytest

from aibroker.client import AsyncBroker, Broker, InsufficientBalance
from aibroker.models import UsageRecord
from tests.support.broker import ADMIN_TOKEN


@pytest.fixture
def org(broker):
    return broker.create_org("Comodin", credit="5")


def test_broker_endpoint_answers_with_cost_and_stats(broker, org):
    with broker.client(org["api_key"]) as http:
        response = http.post("/api/ai/broker", json={
            "prompt": "What are our best-selling products?", "usageType": "CHAT_RESPONSE", "model": "mock-chat",
            "userId": "user_456", "userName": "María González", "temperature": 0.7, "maxTokens": 200,
        })
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["success"] is True and data["provider"] == "mock"
    assert data["response"].startswith("Mock reply to: What are")
    assert data["cost"]["finalCostMicros"] == int(response.headers["x-aibroker-cost-micros"])
    assert data["cost"]["marginBps"] == 3000
    # the final cost is the provider cost x 1.30, rounded up once
    assert data["cost"]["providerCostMicros"] * 13 // 10 <= data["cost"]["finalCostMicros"] <= data["cost"]["providerCostMicros"] * 13 // 10 + 1
    assert data["stats"]["tokensUsed"] == data["stats"]["inputTokens"] + data["stats"]["outputTokens"]
    broker.flush()
    [row] = broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    assert (row.feature, row.user_id, row.user_name, row.endpoint) == ("CHAT_RESPONSE", "user_456", "María González", "broker")


def test_default_model_serves_a_request_without_one(broker, org, upstream):
    with broker.client(org["api_key"]) as http:
        response = http.post("/api/ai/broker", json={"prompt": "which model?"})
    assert response.json()["model"] == "openai/gpt-4o-mini"  # OpenAI is configured in tests
    assert upstream.requests[-1].body["model"] == "gpt-4o-mini"


def test_service_key_acts_for_an_organization(broker, org):
    with broker.client(ADMIN_TOKEN) as admin:
        missing = admin.post("/api/ai/broker", json={"prompt": "hi"})
        assert missing.status_code == 401 and "organizationId" in missing.json()["error"]["message"]
        acting = admin.post("/api/ai/broker", json={"prompt": "hi", "organizationId": org["organization_id"]})
        assert acting.status_code == 200
        unknown = admin.post("/api/ai/broker", json={"prompt": "hi", "organizationId": "org_nope"})
        assert unknown.status_code == 404


def test_a_key_cannot_act_for_another_organization(broker, org):
    other = broker.create_org("Other", credit="1")
    with broker.client(org["api_key"]) as http:
        response = http.post("/api/ai/broker", json={"prompt": "hi", "organizationId": other["organization_id"]})
    assert response.status_code == 403


def test_broker_bad_input(broker, org):
    with broker.client(org["api_key"]) as http:
        assert http.post("/api/ai/broker", json={"prompt": ""}).status_code == 400
        assert http.post("/api/ai/broker", json={"prompt": "x", "maxTokens": "many"}).status_code == 400
        assert http.post("/api/ai/broker", json={"prompt": "x", "bogus": 1}).status_code == 400


def test_stats_and_test_endpoint(broker, org):
    with broker.client(org["api_key"]) as http:
        tested = http.post("/api/ai/broker/test", json={"model": "mock-chat"})
        assert tested.status_code == 200 and tested.json()["test"] == "passed"
        broker.flush()
        stats = http.get("/api/ai/broker").json()
    assert stats["totalRequests"] == 1 and stats["successRate"] == 1.0
    assert stats["byProvider"][0]["provider"] == "mock"


def test_usage_summary_and_details_are_scoped(broker, org):
    other = broker.create_org("Other", credit="1")
    with broker.client(org["api_key"]) as http:
        for _ in range(3):
            http.post("/v1/chat/completions", json={"model": "mock-chat", "messages": [{"role": "user", "content": "x"}]},
                      headers={"x-aibroker-feature": "summaries"})
    with broker.client(other["api_key"]) as http:
        http.post("/v1/chat/completions", json={"model": "mock-chat", "messages": [{"role": "user", "content": "y"}]})
    broker.flush()
    with broker.client(org["api_key"]) as http:
        summary = http.get("/api/ai/usage").json()
        assert summary["totals"]["requests"] == 3
        assert summary["by_feature"][0]["feature"] == "summaries"
        assert summary["by_model"][0]["model"] == "mock/mock-chat"
        assert len(summary["by_day"]) == 1
        page1 = http.get("/api/ai/usage/details", params={"limit": 2}).json()
        page2 = http.get("/api/ai/usage/details", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
        assert len(page1["data"]) == 2 and len(page2["data"]) == 1 and page2["next_cursor"] is None
        assert {r["id"] for r in page1["data"]}.isdisjoint({r["id"] for r in page2["data"]})
        assert http.get("/api/ai/usage", params={"from": "yesterday"}).status_code == 400


def test_client_library_sync(broker, org):
    with Broker(broker.url, org["api_key"], model="mock-chat") as client:
        reply = client.chat("hello from the CRM", user_id="u1")
        assert reply.text.startswith("Mock reply") and reply.cost_micros > 0 and reply.provider == "mock"
        assert client.summarize("a long text to shorten").text
        assert client.translate("hola", "English").text
        assert client.generate_content("a slogan").text
        verdict = client.analyze_sentiment("I love it")
        assert verdict.sentiment in ("positive", "negative", "neutral", "unknown")
    broker.flush()
    features = {r.feature for r in broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])}
    assert features == {"CHAT_RESPONSE", "SUMMARIZATION", "TRANSLATION", "CONTENT_GENERATION", "SENTIMENT_ANALYSIS"}


async def test_client_library_async_and_402(broker):
    poor = broker.create_org("Poor", credit=None)
    async with AsyncBroker(broker.url, poor["api_key"]) as client:
        with pytest.raises(InsufficientBalance) as info:
            await client.chat("hello")
    assert info.value.status == 402
    assert info.value.available_micros == 0 and info.value.required_micros > 0

"""The response cache through a real broker: hit, miss after TTL, bypass, isolation between
organizations, streaming replay, billing policy, usage and metrics reporting."""

from __future__ import annotations

import openai
import pytest

from aibroker.models import UsageRecord, Wallet

ASK = {"model": "gpt-4o-mini", "temperature": 0, "messages": [{"role": "user", "content": "what is a broker"}]}


def _wallet(broker, org_id):
    return broker.rows(Wallet, Wallet.organization_id == org_id)[0].balance_micros


def _records(broker, org_id):
    broker.flush()
    return sorted(broker.rows(UsageRecord, UsageRecord.organization_id == org_id), key=lambda r: r.created_at)


@pytest.fixture
def org(broker):
    return broker.create_org("Cachey", plan="unlimited")


def test_second_identical_request_is_a_free_recorded_hit(broker, upstream, org):
    with broker.client(org["api_key"]) as client:
        first = client.post("/v1/chat/completions", json=ASK)
        balance = _wallet(broker, org["organization_id"])
        second = client.post("/v1/chat/completions", json={**ASK, "user": "someone-else"})  # `user` is not part of the key
    assert first.headers["x-aibroker-cache"] == "miss" and second.headers["x-aibroker-cache"] == "hit"
    assert second.json()["choices"] == first.json()["choices"]
    assert len(upstream.requests) == 1
    assert second.headers["x-aibroker-cost-micros"] == "0"
    assert _wallet(broker, org["organization_id"]) == balance
    fresh, hit = _records(broker, org["organization_id"])
    assert (fresh.cached, hit.cached) == (False, True)
    assert (hit.billed_cost_micros, hit.provider_cost_micros) == (0, 0)
    with broker.client(org["api_key"]) as client:
        usage = client.get("/api/ai/usage").json()["cache"]
    assert (usage["hits"], usage["requests"], usage["hit_rate"]) == (1, 2, 0.5)
    assert usage["saved_cost_micros"] == fresh.billed_cost_micros > 0
    metrics = broker.client().get("/metrics").text
    assert 'aibroker_cache_hits_total{kind="chat"}' in metrics and "aibroker_cache_saved_micros_total" in metrics


def test_miss_after_ttl(broker, upstream, org, movable_clock):
    with broker.client(org["api_key"]) as client:
        assert client.post("/v1/chat/completions", json=ASK).headers["x-aibroker-cache"] == "miss"
        movable_clock.advance(3599)
        assert client.post("/v1/chat/completions", json=ASK).headers["x-aibroker-cache"] == "hit"
        movable_clock.advance(2)  # chat TTL: 1 hour
        assert client.post("/v1/chat/completions", json=ASK).headers["x-aibroker-cache"] == "miss"
    assert len(upstream.requests) == 2


def test_opt_outs_bypass(broker, upstream, org):
    with broker.client(org["api_key"]) as client:
        client.post("/v1/chat/completions", json=ASK)
        no_store = client.post("/v1/chat/completions", json=ASK, headers={"cache-control": "no-store"})
        flag = client.post("/v1/chat/completions", json={**ASK, "cache": False})
        sampled = client.post("/v1/chat/completions", json={**ASK, "temperature": 0.7})
    assert [r.headers["x-aibroker-cache"] for r in (no_store, flag, sampled)] == ["bypass"] * 3
    assert len(upstream.requests) == 4
    assert "cache" not in upstream.requests[2].body  # the broker's flag is not sent upstream


def test_organization_opt_out(broker, upstream, org):
    with broker.db.begin() as conn:
        conn.exec_driver_sql("UPDATE organizations SET cache_enabled = false WHERE id = %s" if "postgres" in broker.database_url
                             else "UPDATE organizations SET cache_enabled = 0 WHERE id = ?", (org["organization_id"],))
    with broker.client(org["api_key"]) as client:
        statuses = [client.post("/v1/chat/completions", json=ASK).headers["x-aibroker-cache"] for _ in range(2)]
    assert statuses == ["bypass", "bypass"] and len(upstream.requests) == 2


def test_same_prompt_from_two_organizations_is_never_shared(broker, upstream, org):
    other = broker.create_org("Other", plan="unlimited")
    for key in (org["api_key"], other["api_key"]):
        with broker.client(key) as client:
            assert client.post("/v1/chat/completions", json=ASK).headers["x-aibroker-cache"] == "miss"
    assert len(upstream.requests) == 2
    with broker.client(other["api_key"]) as client:
        assert client.post("/v1/chat/completions", json=ASK).headers["x-aibroker-cache"] == "hit"
    assert len(upstream.requests) == 2


def test_streamed_request_is_served_from_cache_as_a_stream(broker, upstream, org):
    sdk = openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)
    plain = sdk.chat.completions.create(**ASK)
    raw = sdk.chat.completions.with_raw_response.create(**ASK, stream=True, stream_options={"include_usage": True})
    assert raw.headers["x-aibroker-cache"] == "hit" and raw.headers["content-type"].startswith("text/event-stream")
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain.choices[0].message.content
    assert chunks[-1].usage.total_tokens == plain.usage.total_tokens
    assert chunks[-1].model_extra["aibroker"]["cached"] is True
    assert len(upstream.requests) == 1


def test_broker_api_and_embeddings_carry_the_cache_header(broker, upstream, org):
    with broker.client(org["api_key"]) as client:
        statuses = [
            client.post("/api/ai/broker", json={"prompt": "hello", "model": "gpt-4o-mini", "temperature": 0}).headers["x-aibroker-cache"]
            for _ in range(2)
        ]
        embeds = [client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "vector me"}) for _ in range(2)]
        stream = client.post("/v1/chat/completions", json={**ASK, "stream": True, "temperature": 1})
    assert statuses == ["miss", "hit"]
    assert [e.headers["x-aibroker-cache"] for e in embeds] == ["miss", "hit"]
    assert embeds[0].json()["data"] == embeds[1].json()["data"]
    assert stream.headers["x-aibroker-cache"] == "bypass"


def test_hit_billing_policy_full(broker, upstream, org):
    broker.services.cache.settings.hit_billing = "full"
    try:
        with broker.client(org["api_key"]) as client:
            first = client.post("/v1/chat/completions", json=ASK)
            second = client.post("/v1/chat/completions", json=ASK)
    finally:
        broker.services.cache.settings.hit_billing = "free"
    assert second.headers["x-aibroker-cache"] == "hit"
    assert second.headers["x-aibroker-cost-micros"] == first.headers["x-aibroker-cost-micros"] != "0"

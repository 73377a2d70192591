"""The AI routes' response contract (issue 6): every answer, errors included, carries
`x-aibroker-cache: hit|miss|bypass`; every 429 carries `Retry-After` and an OpenAI-style
error of type `rate_limit_exceeded` or `quota_exceeded`, whoever refused (the provider,
the organization-code limiter, the plan's limits, the routing matrix)."""

from __future__ import annotations

import pytest

from tests.fakes.openai_upstream import Fault
from tests.routing import conftest as routing

# The routing tests' fixtures: the mock matrix loaded, and a frozen clock.
routed, clock = routing.routed, routing.clock

CACHE = "x-aibroker-cache"
MESSAGES = [{"role": "user", "content": "is anybody there"}]
CHAT = {"model": "openai/gpt-4o-mini", "messages": MESSAGES}
CACHED_CHAT = {**CHAT, "temperature": 0}  # temperature 0: the response cache looks it up


@pytest.fixture
def broker_env(broker_env: dict[str, str]) -> dict[str, str]:
    # A tiny organization-code limit, so its 429 comes after two requests.
    return {**broker_env, "AIBROKER_CODE_RATE_LIMIT": "2/minute"}


@pytest.fixture
def org(broker):
    return broker.create_org("Contract", plan="unlimited")


def _retry_after(response) -> int:
    value = int(response.headers["retry-after"])  # whole seconds: int() fails on anything else
    assert value >= 1
    return value


# -- the provider's own 429 ------------------------------------------------------------------


def test_upstream_429_exhausting_retries_is_the_brokers_rate_limit_answer(broker, org, upstream):
    upstream.default_fault = Fault(status=429)  # no Retry-After from the provider
    with broker.client(org["api_key"]) as client:
        response = client.post("/v1/chat/completions", json=CACHED_CHAT)
    assert response.status_code == 429, response.text
    assert len(upstream.requests) == broker.settings.gateway.max_retries + 1  # retried, then given up
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_exceeded", "upstream_rate_limited")
    assert _retry_after(response) == 1  # the default when the provider names no wait
    assert response.headers[CACHE] == "miss"  # the cache was looked up before the upstream failed


def test_upstream_429_passes_on_the_providers_wait(broker, org, upstream):
    # 7 s is more than the broker waits (AIBROKER_RETRY_MAX_SECONDS): no retry, straight to the client.
    upstream.default_fault = Fault(status=429, retry_after=6.2)
    with broker.client(org["api_key"]) as client:
        response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 429, response.text
    assert len(upstream.requests) == 1
    assert response.json()["error"]["type"] == "rate_limit_exceeded"
    assert _retry_after(response) == 7
    assert response.headers[CACHE] == "bypass"  # no temperature 0: the cache never looked


def test_upstream_429_on_a_stream_before_its_first_chunk(broker, org, upstream):
    upstream.default_fault = Fault(status=429, retry_after=3)
    with broker.client(org["api_key"]) as client:
        response = client.post("/v1/chat/completions", json={**CACHED_CHAT, "stream": True})
    assert response.status_code == 429, response.text
    assert response.json()["error"]["type"] == "rate_limit_exceeded"
    assert _retry_after(response) == 3
    assert response.headers[CACHE] == "miss"


def test_upstream_429_on_the_anthropic_route(broker, org, upstream):
    upstream.default_fault = Fault(status=429, retry_after=2)
    with broker.client(org["api_key"]) as client:
        response = client.post("/v1/messages", json={**CHAT, "max_tokens": 50})
    assert response.status_code == 429, response.text
    body = response.json()
    # Anthropic's envelope and type name on this route; the broker's code rides along.
    assert (body["type"], body["error"]["type"], body["error"]["code"]) == ("error", "rate_limit_error", "upstream_rate_limited")
    assert _retry_after(response) == 2
    assert response.headers[CACHE] == "bypass"


def test_embeddings_upstream_429_after_a_cache_miss(broker, org, upstream):
    upstream.default_fault = Fault(status=429, retry_after=4)
    with broker.client(org["api_key"]) as client:
        response = client.post("/v1/embeddings", json={"model": "openai/text-embedding-3-small", "input": "hello"})
    assert response.status_code == 429, response.text
    assert response.json()["error"]["type"] == "rate_limit_exceeded"
    assert _retry_after(response) == 4
    assert response.headers[CACHE] == "miss"  # embeddings are always looked up


# -- the organization-code limiter -----------------------------------------------------------


def test_organization_code_limiter_answers_the_rate_limit_contract_on_every_ai_route(broker):
    code = {"x-organization-code": "ZZZZZZZZZZ"}  # counted before the code is even looked up
    with broker.client() as client:
        first = [client.post("/v1/chat/completions", json=CHAT, headers=code) for _ in range(2)]
        refused = {
            "chat": client.post("/v1/chat/completions", json=CHAT, headers=code),
            "images": client.post("/v1/images/generations", json={"model": "mock-image", "prompt": "x"}, headers=code),
            "broker": client.post("/api/ai/broker", json={"prompt": "hi"}, headers=code),
            "messages": client.post("/v1/messages", json={**CHAT, "max_tokens": 5}, headers=code),
        }
    assert [r.status_code for r in first] == [401, 401]  # unknown code, but within the limit
    assert [r.headers[CACHE] for r in first] == ["bypass", "bypass"]
    for route, response in refused.items():
        assert response.status_code == 429, (route, response.text)
        assert 1 <= _retry_after(response) <= 60, route
        assert response.headers[CACHE] == "bypass", route
        assert response.json()["error"]["code"] == "code_rate_limited", route
    for route in ("chat", "images", "broker"):
        assert refused[route].json()["error"]["type"] == "rate_limit_exceeded", route
    assert refused["messages"].json()["error"]["type"] == "rate_limit_error"  # Anthropic's name for it


# -- the cache header on other errors --------------------------------------------------------


def test_client_errors_carry_the_cache_header(broker, org):
    with broker.client(org["api_key"]) as client:
        responses = {
            "chat 400": client.post("/v1/chat/completions", json={"model": "mock-chat"}),
            "embeddings 400": client.post("/v1/embeddings", json={"model": "mock-embed"}),
            "messages 400": client.post("/v1/messages", json={"model": "mock-chat", "messages": MESSAGES}),
            "audio 400": client.post("/v1/audio/transcriptions", json={"model": "mock-transcribe"}),
            "broker 400": client.post("/api/ai/broker", content=b"not json"),
            "chat 404": client.post("/v1/chat/completions", json={"model": "nobody/nothing", "messages": MESSAGES}),
        }
        anonymous = broker.client().post("/v1/chat/completions", json=CHAT)
    for name, response in {**responses, "chat 401": anonymous}.items():
        expected = int(name.split()[-1])
        assert response.status_code == expected, (name, response.text)
        assert response.headers[CACHE] == "bypass", name
        assert response.headers["x-request-id"].startswith("req_"), name


def test_402_carries_the_cache_header_with_the_cache_outcome(broker, upstream):
    poor = broker.create_org("Poor", credit="0.0001")  # 100 micros: nothing that costs fits
    with broker.client(poor["api_key"]) as client:
        looked_up = client.post("/v1/chat/completions", json={**CACHED_CHAT, "max_tokens": 1000})
        not_looked_up = client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 1000})
        broker_api = client.post("/api/ai/broker", json={"prompt": "hi", "model": "openai/gpt-4o-mini", "temperature": 0, "maxTokens": 1000})
        image = client.post("/v1/images/generations", json={"model": "mock-image", "prompt": "a cat"})
    for response in (looked_up, not_looked_up, broker_api, image):
        assert response.status_code == 402, response.text
    assert [r.headers[CACHE] for r in (looked_up, not_looked_up, broker_api, image)] == ["miss", "bypass", "miss", "bypass"]
    assert upstream.requests == []


# -- the routing matrix's 403 and 429 --------------------------------------------------------


def test_routing_refusals_carry_the_cache_header(routed, clock):
    org = routed.create_org("Free", plan="free")
    ask = {"model": "auto", "messages": MESSAGES}
    with routed.client(org["api_key"]) as client:
        not_in_plan = client.post("/v1/chat/completions", json=ask, headers={"x-aibroker-feature": "juridico"})
        served = [client.post("/v1/chat/completions", json=ask, headers={"x-aibroker-feature": "resumo"}) for _ in range(3)]
        over_limit = client.post("/v1/chat/completions", json=ask, headers={"x-aibroker-feature": "resumo"})
    assert not_in_plan.status_code == 403 and not_in_plan.headers[CACHE] == "bypass"
    assert [r.status_code for r in served] == [200, 200, 200]
    assert over_limit.status_code == 429, over_limit.text
    assert over_limit.json()["error"]["type"] == "quota_exceeded"
    assert _retry_after(over_limit) == 12 * 3600  # to the end of the day
    assert over_limit.headers[CACHE] == "bypass"


# -- consensus -------------------------------------------------------------------------------


def _vote(client, **extra):
    return client.post(
        "/v1/chat/completions", headers={"x-aibroker-feature": "sentimento", **extra.pop("headers", {})},
        json={"model": "auto", "messages": [{"role": "user", "content": "Is this review positive?"}], **extra},
    )


def test_consensus_answers_report_their_calls_cache_outcome(routed):
    org = routed.create_org("Pro", plan="professional")
    with routed.client(org["api_key"]) as client:
        uncached = _vote(client)
        first = _vote(client, temperature=0)
        again = _vote(client, temperature=0)
        opted_out = _vote(client, temperature=0, headers={"cache-control": "no-store"})
    for response in (uncached, first, again, opted_out):
        assert response.status_code == 200, response.text
        assert response.headers["x-aibroker-mode"] == "consensus"
    assert [r.headers[CACHE] for r in (uncached, first, again, opted_out)] == ["bypass", "miss", "hit", "bypass"]
    assert again.json()["choices"] == first.json()["choices"]

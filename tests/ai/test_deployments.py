"""Weighted, health-aware balancing across two deployments of one provider (two fake OpenAI
servers with their own keys), over real HTTP."""

from __future__ import annotations

import pytest

from tests.ai.conftest import assert_ledger_clean
from tests.fakes._server import Fault
from tests.fakes.openai_upstream import FakeOpenAI

REQUESTS = 120


@pytest.fixture
def second():
    with FakeOpenAI(api_key="sk-second") as fake:
        yield fake


@pytest.fixture
def broker_env(broker_env, second):
    deployments = ('{"openai": [{"name": "primary", "weight": 1}, '
                   f'{{"name": "second", "base_url": "{second.base_url}", "key_env": "OPENAI_KEY_SECOND", "weight": 3}}]}}')
    return {**broker_env, "AIBROKER_MOCK_LATENCY_MS": "0", "AIBROKER_DEPLOYMENTS": deployments, "OPENAI_KEY_SECOND": "sk-second"}


def _chat(http, i):
    return http.post("/v1/chat/completions", json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": f"hi {i}"}]})


def test_calls_spread_by_weight_and_fail_over_to_the_healthy_deployment(broker, upstream, second):
    org = broker.create_org("Balanced", credit="20", plan="unlimited")
    with broker.client(org["api_key"]) as http:
        assert all(_chat(http, i).status_code == 200 for i in range(REQUESTS))
        primary_calls, second_calls = len(upstream.requests), len(second.requests)
        assert primary_calls + second_calls == REQUESTS
        assert abs(second_calls / REQUESTS - 0.75) < 0.15, (primary_calls, second_calls)  # weights 1:3
        second.script([Fault(status=500)] * 5)  # the second deployment fails: its breaker opens
        upstream.reset()
        answers = [_chat(http, i) for i in range(20)]
        assert all(a.status_code == 200 for a in answers)  # every call still answered, by the primary
        openai = next(p for p in http.get("/api/ai/providers").json()["data"] if p["name"] == "openai")
        assert openai["health"]["breaker"] == "closed"  # the provider as a whole stayed healthy
        by_name = {d["name"]: d for d in openai["deployments"]}
        assert by_name["second"]["breaker"] == "open" and by_name["primary"]["breaker"] == "closed"
        before = len(second.requests)
        assert all(_chat(http, i).status_code == 200 for i in range(10))
        assert len(second.requests) == before  # an open deployment gets no traffic
    assert_ledger_clean(broker)

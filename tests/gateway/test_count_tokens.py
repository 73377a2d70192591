"""POST /v1/messages/count_tokens with the anthropic SDK: Anthropic models forwarded to the
(fake) Anthropic, the mock's exact count, the estimate for others; free, authenticated and
rate-limited."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from aibroker.gateway.formats.count_tokens import estimate_input_tokens
from aibroker.models import LedgerEntry, UsageRecord
from tests.fakes.anthropic_upstream import FakeAnthropic, count_input_tokens

ANTHROPIC_KEY = "sk-ant-count"
SYSTEM = "You are terse."
MESSAGES = [{"role": "user", "content": "how many tokens is this"},
            {"role": "assistant", "content": "some"},
            {"role": "user", "content": [{"type": "text", "text": "and this one too"}]}]
TOOLS = [{"name": "lookup", "description": "Look a word up.",
          "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}}]


@pytest.fixture(scope="module")
def anthropic_upstream():
    with FakeAnthropic(api_key=ANTHROPIC_KEY) as fake:
        yield fake


@pytest.fixture
def broker_env(broker_env, anthropic_upstream):
    anthropic_upstream.reset()
    return {**broker_env, "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": anthropic_upstream.base_url}


@pytest.fixture
def client(broker, org):
    return anthropic.Anthropic(base_url=broker.url, api_key=org["api_key"], max_retries=0)


def _nothing_billed(broker, org_id):
    broker.flush()
    assert broker.rows(UsageRecord, UsageRecord.organization_id == org_id) == []
    assert [e.kind for e in broker.rows(LedgerEntry, LedgerEntry.organization_id == org_id)] == ["recharge"]


def test_anthropic_model_is_counted_by_anthropic(broker, org, client, anthropic_upstream):
    counted = client.messages.count_tokens(model="anthropic/claude-haiku-4-5", system=SYSTEM, messages=MESSAGES, tools=TOOLS)
    [sent] = [r for r in anthropic_upstream.requests if r.path == "/v1/messages/count_tokens"]
    assert sent.body["model"] == "claude-haiku-4-5" and "max_tokens" not in sent.body
    assert sent.body["tools"][0]["input_schema"] == TOOLS[0]["input_schema"]
    assert counted.input_tokens == count_input_tokens(sent.body) > 0
    # The same request on /v1/messages is billed that many input tokens.
    message = client.messages.create(model="anthropic/claude-haiku-4-5", max_tokens=20, system=SYSTEM, messages=MESSAGES)
    assert message.usage.input_tokens == counted.input_tokens


def test_mock_counts_what_it_bills_and_nothing_is_billed(broker, org, client):
    counted = client.messages.count_tokens(model="mock/mock-chat", system=SYSTEM, messages=MESSAGES)
    assert counted.input_tokens == (3 + 3) + (5 + 3) + (1 + 3) + (4 + 3)
    _nothing_billed(broker, org["organization_id"])
    message = client.messages.create(model="mock/mock-chat", max_tokens=20, system=SYSTEM, messages=MESSAGES)
    assert message.usage.input_tokens == counted.input_tokens


def test_other_providers_get_the_documented_estimate(broker, org, client, upstream):
    counted = client.messages.count_tokens(model="openai/gpt-4o-mini", messages=MESSAGES)
    chat_messages = [{"role": m["role"], "content": m["content"]} for m in MESSAGES]
    assert counted.input_tokens == estimate_input_tokens({"messages": chat_messages}) > 0
    assert upstream.requests == []  # nothing went upstream
    _nothing_billed(broker, org["organization_id"])


def test_authenticated_validated_and_rate_limited(broker, org):
    url = broker.url + "/v1/messages/count_tokens"
    body = {"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(url, json=body).status_code == 401
    bad = httpx.post(url, json={"model": "mock-chat"}, headers={"x-api-key": org["api_key"]})
    assert bad.status_code == 400 and bad.json()["type"] == "error"
    with broker.client(org["api_key"]) as client:
        key = client.post("/api/keys", json={"name": "counted", "rpm": 2}).json()["key"]
    answers = [httpx.post(url, json=body, headers={"x-api-key": key}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].json() == {"input_tokens": 4}
    assert answers[2].json()["error"]["type"] == "rate_limit_error"
    broker.flush()
    rows = broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    assert [(r.endpoint, r.status, r.billed_cost_micros) for r in rows] == [("count_tokens", "refused", 0)]

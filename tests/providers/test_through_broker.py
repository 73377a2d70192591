"""Every provider through a running broker, with the openai SDK: one response shape, one
way of billing (catalog price x tokens x 1.30, rounded up once), errors and cut streams."""

from __future__ import annotations

import json

import openai
import orjson
import pytest
from sqlalchemy.orm import Session

from aibroker.catalog.registry import load_packaged
from aibroker.models import ModelOverride, UsageRecord
from tests.fakes.anthropic_upstream import Fault
from tests.fakes.gemini_upstream import embed_text as gemini_vector
from tests.providers.helpers import LOOKUP
from tests.support.broker import BrokerServer

PRICES = load_packaged()
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "compare these providers"}]


@pytest.fixture
def org(broker):
    return broker.create_org("Acme", credit="10")


@pytest.fixture
def client(broker, org):
    return openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)


def rows(broker, org_id):
    broker.flush()
    return sorted(broker.rows(UsageRecord, UsageRecord.organization_id == org_id), key=lambda r: r.created_at)


def expected_billed(model_id: str, prompt: int, completion: int) -> int:
    entry = PRICES[model_id]
    exact = prompt * entry.input_micros_per_m + completion * entry.output_micros_per_m  # micros x 1e6
    return -(-exact * 13_000 // (10_000 * 1_000_000))  # x 1.30, rounded up once


@pytest.mark.parametrize(
    "model_id",
    ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash", "ollama/llama3.2", "mock/mock-chat"],
)
def test_same_request_same_shape_and_correct_cost_on_every_provider(broker, org, client, model_id):
    raw = client.chat.completions.with_raw_response.create(model=model_id, messages=MESSAGES)
    completion = raw.parse()
    assert isinstance(completion.id, str) and completion.id
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason == "stop" and choice.index == 0
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert raw.headers["x-aibroker-model"] == model_id
    [row] = rows(broker, org["organization_id"])
    assert (row.status, row.provider, row.model) == ("success", model_id.split("/")[0], model_id)
    assert (row.input_tokens, row.output_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    billed = expected_billed(model_id, usage.prompt_tokens, usage.completion_tokens)
    assert row.billed_cost_micros == billed == int(raw.headers["x-aibroker-cost-micros"])
    # The streamed call gives the same text and the same bill.
    chunks = list(client.chat.completions.create(model=model_id, messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == choice.message.content
    assert chunks[-1].usage.completion_tokens == usage.completion_tokens
    assert rows(broker, org["organization_id"])[-1].billed_cost_micros == billed


def test_anthropic_tools_round_trip_through_the_broker(broker, client, fake_anthropic):
    first = client.chat.completions.create(model="anthropic/claude-haiku-4-5", tools=[LOOKUP],
                                           messages=[{"role": "user", "content": "weather in Lima"}])
    assert first.choices[0].finish_reason == "tool_calls"
    tool_call = first.choices[0].message.tool_calls[0]
    assert json.loads(tool_call.function.arguments) == {"text": "weather in Lima"}
    second = client.chat.completions.create(model="anthropic/claude-haiku-4-5", tools=[LOOKUP], messages=[
        {"role": "user", "content": "weather in Lima"}, first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": tool_call.id, "content": "sunny"}])
    assert second.choices[0].message.content == "Echo: sunny"
    assert fake_anthropic.requests[-1].body["max_tokens"] == 4096  # the broker's cap, always set


def test_embeddings_through_the_broker(broker, org, client):
    gemini = client.embeddings.create(model="gemini/gemini-embedding-001", input=["alpha beta", "gamma"])
    assert gemini.data[1].embedding == pytest.approx(gemini_vector("gamma"))
    ollama = client.embeddings.create(model="nomic-embed-text", input="alpha beta")
    assert len(ollama.data[0].embedding) == 8 and ollama.usage.prompt_tokens == 2
    with pytest.raises(openai.BadRequestError, match="not an embedding model"):
        client.embeddings.create(model="anthropic/claude-haiku-4-5", input="x")
    models = [r.model for r in rows(broker, org["organization_id"])]
    assert models == ["gemini/gemini-embedding-001", "ollama/nomic-embed-text"]


def test_upstream_errors_become_broker_errors(broker, org, client, fake_anthropic, fake_gemini):
    fake_anthropic.script([Fault(status=529)])  # one overload: retried, then answered
    ok = client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=MESSAGES)
    assert ok.choices[0].message.content
    fake_anthropic.script([Fault(status=529)] * 3)  # every retry overloaded: 503
    with pytest.raises(openai.InternalServerError) as unavailable:
        client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=MESSAGES)
    assert unavailable.value.status_code == 503
    assert unavailable.value.body["type"] == "upstream_unavailable"
    fake_gemini.script([Fault(status=400, message="bad field")])
    with pytest.raises(openai.BadRequestError, match="bad field"):
        client.chat.completions.create(model="gemini/gemini-2.5-flash", messages=MESSAGES)
    fake_gemini.script([Fault(status=429, retry_after=0.01)])  # RetryInfo honoured, then answered
    assert client.chat.completions.create(model="gemini/gemini-2.5-flash", messages=MESSAGES).choices
    statuses = [r.status for r in rows(broker, org["organization_id"])]
    assert statuses.count("success") == 2 and statuses.count("error") >= 5
    assert all(r.billed_cost_micros == 0 for r in rows(broker, org["organization_id"]) if r.status == "error")


@pytest.mark.parametrize("model_id", ["anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash", "ollama/llama3.2"])
def test_cut_stream_ends_with_an_error_event_and_a_partial_record(
    broker, org, model_id, fake_anthropic, fake_gemini, fake_ollama
):
    fake = {"anthropic": fake_anthropic, "gemini": fake_gemini, "ollama": fake_ollama}[model_id.split("/")[0]]
    fake.script([Fault(cut_after_chunks=3)])
    body = {"model": model_id, "messages": [{"role": "user", "content": "one two three four five six"}], "stream": True}
    with broker.client(org["api_key"]) as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert "[DONE]" not in events
    last = orjson.loads(events[-1])
    assert last["error"]["type"] in ("upstream_bad_response", "upstream_connection_error")
    [row] = rows(broker, org["organization_id"])
    assert row.status == "partial" and row.streamed


def test_model_names_bare_prefixed_and_aliases(broker, client):
    assert client.chat.completions.with_raw_response.create(
        model="claude-haiku-4-5", messages=MESSAGES).headers["x-aibroker-model"] == "anthropic/claude-haiku-4-5"
    assert client.chat.completions.with_raw_response.create(
        model="fast", messages=MESSAGES).headers["x-aibroker-model"] == "anthropic/claude-haiku-4-5"
    assert client.chat.completions.with_raw_response.create(
        model="local", messages=MESSAGES).headers["x-aibroker-model"] == "ollama/llama3.2"
    with pytest.raises(openai.NotFoundError, match="catalog has no"):
        client.chat.completions.create(model="anthropic/claude-nonexistent", messages=MESSAGES)


def test_discovered_ollama_models_are_served_free_and_recorded(broker, org, client):
    listed = {m.id for m in client.models.list()}
    assert {"ollama/phi4-mini:latest", "ollama/qwen2.5:7b", "ollama/llama3.2"} <= listed
    assert "ollama/llama3.2:latest" not in listed  # the packaged entry already covers it
    raw = client.chat.completions.with_raw_response.create(model="ollama/phi4-mini:latest", messages=MESSAGES)
    assert raw.headers["x-aibroker-cost-micros"] == "0"
    [row] = rows(broker, org["organization_id"])
    assert (row.model, row.status, row.billed_cost_micros) == ("ollama/phi4-mini:latest", "success", 0)
    assert row.input_tokens > 0 and row.output_tokens > 0


# -- a custom OpenAI-compatible provider from AIBROKER_EXTRA_PROVIDERS -----------------


def test_custom_provider_needs_a_price_then_works_with_its_model_prefix(database_url, upstream, monkeypatch):
    extra = [{"name": "acme", "base_url": upstream.base_url, "key_env": "ACME_KEY",
              "model_prefix": "accounts/acme/models/"}]
    env = {"AIBROKER_DATABASE_URL": database_url, "AIBROKER_ADMIN_TOKEN": "test-admin-token",
           "AIBROKER_EXTRA_PROVIDERS": json.dumps(extra), "ACME_KEY": "sk-test"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    request = {"model": "acme/gpt-4o-mini", "messages": [{"role": "user", "content": "custom provider call"}]}

    broker = BrokerServer(database_url)
    broker.start()
    try:
        org = broker.create_org("Acme", credit="10")
        with broker.client(org["api_key"]) as http:
            refused = http.post("/v1/chat/completions", json=request)
        assert refused.status_code == 404
        assert "provider 'acme' is configured but the catalog has no 'gpt-4o-mini'" in refused.json()["error"]["message"]
        with Session(broker.db) as session, session.begin():  # the operator prices the model
            session.add(ModelOverride(id="acme/gpt-4o-mini", input_micros_per_m=500_000, output_micros_per_m=1_000_000,
                                      enabled=True))
    finally:
        broker.stop()

    broker = BrokerServer(database_url)  # overrides are read at startup
    broker.start()
    try:
        with broker.client(org["api_key"]) as http:
            answer = http.post("/v1/chat/completions", json=request)
        assert answer.status_code == 200, answer.text
        sent = upstream.requests[-1]
        assert sent.body["model"] == "accounts/acme/models/gpt-4o-mini"
        assert sent.headers["authorization"] == "Bearer sk-test"
        usage = answer.json()["usage"]
        exact = usage["prompt_tokens"] * 500_000 + usage["completion_tokens"] * 1_000_000
        assert int(answer.headers["x-aibroker-cost-micros"]) == -(-exact * 13_000 // (10_000 * 1_000_000))
    finally:
        broker.stop()

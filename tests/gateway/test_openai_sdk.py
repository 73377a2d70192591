"""The official openai SDK against a running broker: chat (plain, streamed), embeddings,
models, and every error class, with usage records and debits checked in the database."""

from __future__ import annotations

import httpx
import openai
import pytest

from aibroker.models import LedgerEntry, UsageRecord, Wallet
from tests.fakes.openai_upstream import count_prompt_tokens, reply_text


def _usage_rows(broker, org_id):
    broker.flush()
    return broker.rows(UsageRecord, UsageRecord.organization_id == org_id)


def _wallet(broker, org_id):
    broker.flush()  # idle wallet leases go back first: `held` then shows only in-flight requests
    return broker.rows(Wallet, Wallet.organization_id == org_id)[0]


def test_chat_plain_is_answered_billed_and_recorded(broker, org, client):
    raw = client.chat.completions.with_raw_response.create(
        model="mock-chat", messages=[{"role": "user", "content": "hello there broker"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Mock reply to: hello there broker"
    assert completion.usage.prompt_tokens == 6 and completion.usage.completion_tokens == 6
    # mock-chat: $1 / $2 per 1M tokens -> 6*1 + 6*2 = 18 micros; x1.30 = 23.4 -> rounded up once: 24
    assert raw.headers["x-aibroker-cost-micros"] == "24"
    assert raw.headers["x-aibroker-balance-micros"] == str(10_000_000 - 24)
    assert raw.headers["x-request-id"].startswith("req_")
    [row] = _usage_rows(broker, org["organization_id"])
    assert (row.status, row.provider, row.model) == ("success", "mock", "mock/mock-chat")
    assert (row.input_tokens, row.output_tokens) == (6, 6)
    assert (row.provider_cost_micros, row.billed_cost_micros, row.margin_bps) == (18, 24, 3000)
    assert row.request_id == raw.headers["x-request-id"]
    [debit] = broker.rows(LedgerEntry, LedgerEntry.usage_record_id == row.id)
    assert (debit.kind, debit.amount_micros, debit.balance_after_micros) == ("debit", -24, 10_000_000 - 24)
    wallet = _wallet(broker, org["organization_id"])
    assert (wallet.balance_micros, wallet.held_micros) == (10_000_000 - 24, 0)


def test_chat_stream_matches_plain_and_bills_real_tokens(broker, org, client):
    messages = [{"role": "user", "content": "stream these few words"}]
    plain = client.chat.completions.create(model="mock-chat", messages=messages)
    stream = client.chat.completions.create(
        model="mock-chat", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage.completion_tokens == plain.usage.completion_tokens
    assert usage_chunk.model_extra["aibroker"]["cost_micros"] > 0
    rows = sorted(_usage_rows(broker, org["organization_id"]), key=lambda r: r.id)
    assert [r.streamed for r in rows] == [False, True]
    assert rows[0].billed_cost_micros == rows[1].billed_cost_micros
    assert rows[1].output_tokens == plain.usage.completion_tokens


def test_stream_without_usage_option_still_bills_real_tokens(broker, org, client):
    chunks = list(client.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "a b c"}], stream=True))
    assert all(c.usage is None for c in chunks)
    [row] = _usage_rows(broker, org["organization_id"])
    assert row.output_tokens == 6 and row.billed_cost_micros > 0


def test_upstream_openai_chat_plain_and_stream(broker, org, client, upstream):
    messages = [{"role": "user", "content": "through the fake upstream"}]
    plain = client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
    assert plain.choices[0].message.content == reply_text(messages)
    sent = upstream.requests[-1].body
    assert sent["model"] == "gpt-4o-mini"  # the upstream name, not ours
    assert sent["max_tokens"] == 4096  # the broker caps output so the hold is a true bound
    streamed = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == reply_text(messages)
    assert upstream.requests[-1].body["stream_options"]["include_usage"] is True
    rows = _usage_rows(broker, org["organization_id"])
    expected_in = count_prompt_tokens(messages)
    assert {r.input_tokens for r in rows} == {expected_in}
    # gpt-4o-mini: $0.15 / $0.60 per 1M
    out = len(reply_text(messages).split())
    exact = expected_in * 150_000 + out * 600_000
    assert {r.billed_cost_micros for r in rows} == {-(-exact * 13_000 // (10_000 * 1_000_000))}


def test_tools_and_response_format_pass_through(broker, client, upstream):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    completion = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "use the tool"}], tools=tools
    )
    assert completion.choices[0].message.tool_calls[0].function.name == "lookup"
    assert upstream.requests[-1].body["tools"] == tools
    client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "json please"}], response_format={"type": "json_object"}
    )
    assert upstream.requests[-1].body["response_format"] == {"type": "json_object"}


def test_multipart_content_passes_through(broker, client, upstream):
    content = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": content}])
    assert upstream.requests[-1].body["messages"][0]["content"] == content


def test_embeddings_mock_and_upstream(broker, org, client, upstream):
    mock = client.embeddings.create(model="mock-embed", input=["one", "two words"], encoding_format="float")
    assert len(mock.data) == 2 and len(mock.data[0].embedding) == 16
    real = client.embeddings.create(model="openai/text-embedding-3-small", input="hello")
    assert len(real.data[0].embedding) == 8
    rows = _usage_rows(broker, org["organization_id"])
    assert sorted(r.endpoint for r in rows) == ["embeddings", "embeddings"]
    assert all(r.billed_cost_micros > 0 for r in rows)


def test_models_list_has_pricing_and_context(broker, client):
    models = {m.id: m for m in client.models.list()}
    assert "mock/mock-chat" in models and "openai/gpt-4o-mini" in models
    assert "anthropic/claude-sonnet-4-5" not in models  # no key configured
    mini = models["openai/gpt-4o-mini"].model_extra
    assert mini["context_length"] == 128000
    assert mini["pricing"]["prompt"] == "0.00000015"


def test_bad_key_and_revoked_key_are_401(broker, org):
    bad = openai.OpenAI(base_url=broker.url + "/v1", api_key="abk_not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    missing = httpx.get(broker.url + "/v1/models")
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    with broker.client(org["api_key"]) as http:
        created = http.post("/api/keys", json={"name": "temp"}).json()
        assert http.delete(f"/api/keys/{created['id']}").status_code == 204
    revoked = openai.OpenAI(base_url=broker.url + "/v1", api_key=created["key"], max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        revoked.models.list()


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="nope-9000", messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"model": "mock-chat", "messages": []}, "messages"),
        ({"model": "mock-chat", "messages": "hi"}, "messages"),
        ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "mock-chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": 999999}, "at most 4096"),
        ({"model": "mock-chat", "messages": [{"role": "wizard", "content": "x"}]}, "role"),
        ({"model": "mock-embed", "messages": [{"role": "user", "content": "x"}]}, "embeddings"),
    ],
)
def test_bad_requests_are_400_and_cost_nothing(broker, org, client, body, fragment):
    with pytest.raises(openai.BadRequestError) as info:
        client.post("/chat/completions", body=body, cast_to=httpx.Response)
    assert fragment in str(info.value)
    assert _usage_rows(broker, org["organization_id"]) == []
    assert _wallet(broker, org["organization_id"]).balance_micros == 10_000_000


def test_malformed_json_and_oversized_body(broker, org):
    with broker.client(org["api_key"]) as http:
        broken = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]["message"]
        huge = http.post("/v1/chat/completions", content=b"x" * (broker.settings.server.max_body_bytes + 1))
        assert huge.status_code == 413


def test_missing_capability_is_400_before_any_call(broker, client, upstream):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    with pytest.raises(openai.BadRequestError, match="mock/mock-text.*tools"):
        client.chat.completions.create(model="mock-text", messages=[{"role": "user", "content": "x"}], tools=tools)
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    with pytest.raises(openai.BadRequestError, match="vision"):
        client.chat.completions.create(model="mock-text", messages=[{"role": "user", "content": image}])


def test_models_list_is_what_this_organization_may_use(broker):
    with broker.admin() as admin:
        made = admin.post("/api/admin/plans", json={"slug": "narrow", "name": "Narrow", "allowed_models": ["mock/mock-chat", "gpt-4o-mini"]})
        assert made.status_code == 201, made.text
    narrow = broker.create_org("Narrow", plan="narrow")
    listed = {m.id for m in openai.OpenAI(base_url=broker.url + "/v1", api_key=narrow["api_key"]).models.list()}
    assert listed == {"mock/mock-chat", "openai/gpt-4o-mini"}
    plain = broker.create_org("Plain", plan="unlimited")
    everything = {m.id for m in openai.OpenAI(base_url=broker.url + "/v1", api_key=plain["api_key"]).models.list()}
    assert listed < everything and "openai/gpt-4o" in everything

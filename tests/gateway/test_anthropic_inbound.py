"""The official anthropic SDK against the broker's /v1/messages, over any upstream (mock,
the fake OpenAI): plain, streamed, tools, system prompt, errors, usage records and debits."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from aibroker.models import LedgerEntry, Wallet
from tests.fakes.openai_upstream import count_prompt_tokens, reply_text
from tests.support.usage import usage_rows

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather of a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def client(broker, org):
    return anthropic.Anthropic(base_url=broker.url, api_key=org["api_key"], max_retries=0)


def _wallet(broker, org_id):
    return broker.rows(Wallet, Wallet.organization_id == org_id)[0]


def test_plain_message_on_mock_is_billed_and_recorded(broker, org, client):
    raw = client.messages.with_raw_response.create(
        model="mock-chat", max_tokens=100, messages=[{"role": "user", "content": "hello there broker"}]
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.model == "mock-chat"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Mock reply to: hello there broker"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (6, 6)
    assert message.usage.cache_read_input_tokens == 0 and message.usage.cache_creation_input_tokens == 0
    # same price as the OpenAI route: 6*1 + 6*2 = 18 micros x 1.30 -> 24
    assert raw.headers["x-aibroker-cost-micros"] == "24"
    assert raw.headers["x-aibroker-balance-micros"] == str(10_000_000 - 24)
    assert raw.headers["x-request-id"].startswith("req_")
    [row] = usage_rows(broker, org["organization_id"])
    assert (row.endpoint, row.status, row.model, row.billed_cost_micros) == ("messages", "success", "mock/mock-chat", 24)
    assert row.request_id == raw.headers["x-request-id"]
    [debit] = broker.rows(LedgerEntry, LedgerEntry.usage_record_id == row.id)
    assert debit.amount_micros == -24
    wallet = _wallet(broker, org["organization_id"])
    assert (wallet.balance_micros, wallet.held_micros) == (10_000_000 - 24, 0)


def test_system_prompt_and_params_reach_the_openai_upstream(broker, org, client, upstream):
    message = client.messages.create(
        model="openai/gpt-4o-mini",
        max_tokens=50,
        system="You are terse.",
        extra_body={"temperature": 0.2, "top_p": 0.9},  # this SDK version no longer names them
        stop_sequences=["END"],
        metadata={"user_id": "end-user-7"},
        messages=[{"role": "user", "content": "through the fake upstream"}],
    )
    sent = upstream.requests[-1].body
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"], sent["stop"], sent["user"]) == (50, 0.2, 0.9, ["END"], "end-user-7")
    openai_messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "through the fake upstream"}]
    assert message.content[0].text == reply_text(openai_messages)
    assert message.usage.input_tokens == count_prompt_tokens(openai_messages)
    [row] = usage_rows(broker, org["organization_id"])
    assert row.user_id == "end-user-7" and row.provider == "openai"
    out = len(reply_text(openai_messages).split())
    exact = count_prompt_tokens(openai_messages) * 150_000 + out * 600_000  # gpt-4o-mini per 1M
    assert row.billed_cost_micros == -(-exact * 13_000 // (10_000 * 1_000_000))


def test_truncated_answer_stops_for_max_tokens(client):
    message = client.messages.create(
        model="openai/gpt-4o-mini", max_tokens=2, messages=[{"role": "user", "content": "a long enough question here"}]
    )
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 2


@pytest.mark.parametrize("model", ["mock-chat", "openai/gpt-4o-mini"])
def test_stream_with_the_sdk_helper_matches_plain(broker, org, client, model):
    messages = [{"role": "user", "content": "stream these few words"}]
    plain = client.messages.create(model=model, max_tokens=100, messages=messages)
    with client.messages.stream(model=model, max_tokens=100, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == plain.content[0].text
    assert final.content[0].text == plain.content[0].text
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (plain.usage.input_tokens, plain.usage.output_tokens)
    rows = usage_rows(broker, org["organization_id"])
    assert [r.streamed for r in rows] == [False, True]
    assert rows[0].billed_cost_micros == rows[1].billed_cost_micros > 0
    wallet = _wallet(broker, org["organization_id"])
    assert wallet.balance_micros == 10_000_000 - 2 * rows[0].billed_cost_micros and wallet.held_micros == 0


def test_raw_stream_events_follow_anthropic_order(client):
    events = list(
        client.messages.create(
            model="mock-chat", max_tokens=100, stream=True, messages=[{"role": "user", "content": "two words"}]
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert events[0].message.content == [] and events[0].message.id.startswith("msg_")
    assert all(e.delta.type == "text_delta" for e in events if e.type == "content_block_delta")
    delta = events[-2]
    assert delta.delta.stop_reason == "end_turn" and delta.usage.output_tokens == 5
    assert delta.model_extra["aibroker"]["cost_micros"] > 0


def test_raw_http_stream_has_ping_and_event_names(broker, org):
    body = {"model": "mock-chat", "max_tokens": 20, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", broker.url + "/v1/messages", json=body, headers={"x-api-key": org["api_key"]}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert names[:2] == ["message_start", "ping"] and names[-1] == "message_stop"


@pytest.mark.parametrize("model", ["mock-chat", "openai/gpt-4o-mini"])
def test_tools_round_trip(broker, client, upstream, model):
    first = client.messages.create(
        model=model, max_tokens=200, tools=[WEATHER_TOOL], tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "weather in Lima?"}],
    )
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if b.type == "tool_use"]
    # The mock fills the arguments from the tool's schema; the fake upstream sends none.
    assert call.name == "get_weather" and call.input == ({"city": "mock"} if model == "mock-chat" else {}) and call.id
    second = client.messages.create(
        model=model, max_tokens=200, tools=[WEATHER_TOOL], tool_choice={"type": "none"},
        messages=[
            {"role": "user", "content": "weather in Lima?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, {"type": "tool_use", "id": call.id, "name": call.name, "input": {"city": "Lima"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22C and sunny"}, {"type": "text", "text": "so?"}]},
        ],
    )
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"
    if model.startswith("openai/"):
        sent = upstream.requests[-1].body
        assert sent["tools"] == [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL["input_schema"], "description": "Current weather of a city."}}]
        assert sent["tool_choice"] == "none"
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool", "user"]
        assert sent["messages"][1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Lima"}'}
        assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.id, "content": "22C and sunny"}
        assert upstream.requests[-2].body["tool_choice"] == "required"


def test_streamed_tool_use_accumulates_input(client):
    with client.messages.stream(
        model="openai/gpt-4o-mini", max_tokens=100, tools=[WEATHER_TOOL], tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in final.content] == [("tool_use", "get_weather", {})]


def test_image_blocks_become_image_urls(client, upstream):
    client.messages.create(
        model="openai/gpt-4o-mini", max_tokens=20,
        messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            {"type": "text", "text": "what is this"},
        ]}],
    )
    assert upstream.requests[-1].body["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "what is this"},
    ]


def test_bad_key_is_authentication_error(broker):
    bad = anthropic.Anthropic(base_url=broker.url, api_key="abk_not-a-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        bad.messages.create(model="mock-chat", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 401
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "authentication_error"


def test_missing_max_tokens_is_400_and_costs_nothing(broker, org, client):
    with pytest.raises(anthropic.BadRequestError, match="max_tokens") as info:
        client.post("/v1/messages", body={"model": "mock-chat", "messages": [{"role": "user", "content": "x"}]}, cast_to=httpx.Response)
    assert info.value.body["error"]["type"] == "invalid_request_error"
    assert usage_rows(broker, org["organization_id"]) == []


def test_unknown_model_is_404(client):
    with pytest.raises(anthropic.NotFoundError, match="does not exist") as info:
        client.messages.create(model="nope-9000", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "not_found_error"


def test_missing_capability_is_400_before_any_call(broker, org, client):
    with pytest.raises(anthropic.BadRequestError, match="mock/mock-text.*tools"):
        client.messages.create(model="mock-text", max_tokens=10, tools=[WEATHER_TOOL], messages=[{"role": "user", "content": "x"}])
    assert usage_rows(broker, org["organization_id"]) == []


@pytest.mark.parametrize("stream", [False, True])
def test_insufficient_balance_is_402_with_amounts(broker, stream):
    poor = broker.create_org("Poor", credit="0.000010")
    client = anthropic.Anthropic(base_url=broker.url, api_key=poor["api_key"], max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="mock-chat", max_tokens=4000, stream=stream, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 402
    error = info.value.body["error"]
    assert error["type"] == "billing_error" and error["code"] == "insufficient_balance"
    assert error["available_micros"] == 10 and error["required_micros"] > 10
    [refused] = usage_rows(broker, poor["organization_id"])  # recorded, not charged
    assert (refused.status, refused.endpoint, refused.billed_cost_micros) == ("refused", "messages", 0)


# -- an Anthropic upstream: the SDK's request crosses the broker's OpenAI shape and back ---

ANTHROPIC_KEY = "sk-ant-inbound"


@pytest.fixture(scope="module")
def anthropic_upstream():
    from tests.fakes.anthropic_upstream import FakeAnthropic

    with FakeAnthropic(api_key=ANTHROPIC_KEY) as fake:
        yield fake


@pytest.fixture
def broker_env(broker_env, anthropic_upstream):
    anthropic_upstream.reset()
    return {**broker_env, "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": anthropic_upstream.base_url}


def test_anthropic_upstream_keeps_cache_marks_and_prices_cache_tokens(broker, org, client, anthropic_upstream):
    system = [{"type": "text", "text": "You are a careful assistant " * 20, "cache_control": {"type": "ephemeral"}}]
    messages = [{"role": "user", "content": "hello cache"}]
    first = client.messages.create(model="anthropic/claude-haiku-4-5", max_tokens=50, system=system, messages=messages)
    second = client.messages.create(model="anthropic/claude-haiku-4-5", max_tokens=50, system=system, messages=messages)
    sent = anthropic_upstream.requests[-1].body
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral"} and sent["model"] == "claude-haiku-4-5"
    assert first.usage.cache_creation_input_tokens > 0 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.content[0].text == first.content[0].text == "Echo: hello cache"
    rows = usage_rows(broker, org["organization_id"])
    for message, row in zip((first, second), rows, strict=True):
        usage = message.usage
        # claude-haiku-4-5 per 1M: input $1, cache read $0.10, cache write $1.25, output $5
        exact = (usage.input_tokens * 1_000_000 + usage.cache_read_input_tokens * 100_000
                 + usage.cache_creation_input_tokens * 1_250_000 + usage.output_tokens * 5_000_000)
        assert row.billed_cost_micros == -(-exact * 13_000 // (10_000 * 1_000_000))
        assert row.cached_tokens == usage.cache_read_input_tokens
    assert rows[1].billed_cost_micros < rows[0].billed_cost_micros


def test_anthropic_upstream_stream_and_tools(client, anthropic_upstream):
    with client.messages.stream(
        model="anthropic/claude-haiku-4-5", max_tokens=100, tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "weather in Quito"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].name == "get_weather" and final.content[1].input == {"text": "weather in Quito"}
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    sent = anthropic_upstream.requests[-1].body
    assert sent["tools"][0]["input_schema"] == WEATHER_TOOL["input_schema"] and sent["stream"] is True

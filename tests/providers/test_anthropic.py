"""The Anthropic adapter over real HTTP against the fake Messages API, and the official
`anthropic` SDK against the same fake (to prove the fake speaks the real wire format)."""

from __future__ import annotations

import json

import anthropic
import pytest

from aibroker.billing.pricing import cost_of
from aibroker.providers.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderBadResponse,
    ProviderConnectionError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from tests.fakes.anthropic_upstream import Fault, StreamFault, count_input_tokens
from tests.providers.conftest import ANTHROPIC_KEY
from tests.providers.helpers import LOOKUP, USER, anthropic_adapter, call, collect, streamed_text

MODEL = "anthropic/claude-haiku-4-5"


@pytest.fixture
async def adapter(fake_anthropic):
    provider = anthropic_adapter(fake_anthropic.base_url)
    yield provider
    await provider.aclose()


async def test_plain_chat_translates_request_and_response(adapter, fake_anthropic):
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": "first"},
        {"role": "user", "content": [{"type": "text", "text": "second part"}]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "hello there friend"},
    ]
    result = await adapter.chat(call(MODEL, {"messages": messages, "max_completion_tokens": 300, "temperature": 1.5,
                                             "stop": "END"}))
    sent = fake_anthropic.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY and sent.headers["anthropic-version"] == "2023-06-01"
    body = sent.body
    assert body["system"] == "Be terse.\n\nAnswer in English."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]  # consecutive users merged
    assert [b["text"] for b in body["messages"][0]["content"]] == ["first", "second part"]
    assert body["max_tokens"] == 300 and body["temperature"] == 1.0 and body["stop_sequences"] == ["END"]
    choice = result.body["choices"][0]
    assert result.body["object"] == "chat.completion" and result.body["id"].startswith("msg_")
    assert choice["message"] == {"role": "assistant", "content": "Echo: hello there friend"}
    assert choice["finish_reason"] == "stop"
    prompt = count_input_tokens(body)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (prompt, 4)
    assert result.body["usage"]["prompt_tokens"] == prompt and result.body["usage"]["total_tokens"] == prompt + 4


async def test_max_tokens_stop_is_length(adapter):
    result = await adapter.chat(call(MODEL, {"messages": USER, "max_tokens": 2}))
    assert result.body["choices"][0]["message"]["content"] == "Echo: hello"
    assert result.body["choices"][0]["finish_reason"] == "length"


async def test_tools_both_directions(adapter, fake_anthropic):
    first = await adapter.chat(call(MODEL, {"messages": USER, "tools": [LOOKUP], "tool_choice": "required",
                                            "parallel_tool_calls": False}))
    sent = fake_anthropic.requests[-1].body
    assert sent["tools"] == [{"name": "lookup", "description": "Look something up.",
                              "input_schema": LOOKUP["function"]["parameters"]}]
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    message = first.body["choices"][0]["message"]
    assert first.body["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] == "Let me use lookup."
    [tool_call] = message["tool_calls"]
    assert tool_call["type"] == "function" and tool_call["function"]["name"] == "lookup"
    assert json.loads(tool_call["function"]["arguments"]) == {"text": "hello there friend"}
    # The answer goes back as an assistant turn and a tool message: tool_use and tool_result blocks.
    history = [*USER, message, {"role": "tool", "tool_call_id": tool_call["id"], "content": "sunny and warm"}]
    second = await adapter.chat(call(MODEL, {"messages": history, "tools": [LOOKUP]}))
    sent = fake_anthropic.requests[-1].body["messages"]
    assert sent[1]["content"][1] == {"type": "tool_use", "id": tool_call["id"], "name": "lookup",
                                     "input": {"text": "hello there friend"}}
    assert sent[2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_call["id"],
                                                    "content": "sunny and warm"}]}
    assert second.body["choices"][0]["message"]["content"] == "Echo: sunny and warm"
    assert second.body["choices"][0]["finish_reason"] == "stop"


async def test_images_data_url_and_link(adapter, fake_anthropic):
    content = [{"type": "text", "text": "what is this"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]
    result = await adapter.chat(call(MODEL, {"messages": [{"role": "user", "content": content}]}))
    blocks = fake_anthropic.requests[-1].body["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    assert result.usage.input_tokens == 3 + 3 + 2 * 10  # words + per message + two images


async def test_stream_text_and_usage(adapter):
    chunks = await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert streamed_text(chunks) == "Echo: hello there friend"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 6 and chunks[-1]["usage"]["completion_tokens"] == 4


async def test_stream_tool_call_arguments_arrive_as_json_pieces(adapter):
    chunks = await collect(adapter.stream_chat(call(MODEL, {"messages": USER, "tools": [LOOKUP]})))
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["index"] == 0 and calls[0]["function"]["name"] == "lookup" and calls[0]["id"].startswith("toolu_")
    arguments = "".join(tc["function"]["arguments"] for tc in calls)
    assert json.loads(arguments) == {"text": "hello there friend"}
    assert streamed_text(chunks) == "Let me use lookup."
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_prompt_caching_counts_and_price(adapter):
    system = [{"type": "text", "text": "a long shared system prompt " * 5, "cache_control": {"type": "ephemeral"}}]
    body = {"messages": [{"role": "system", "content": system}, *USER]}
    first = await adapter.chat(call(MODEL, body))
    second = await adapter.chat(call(MODEL, body))
    assert (first.usage.cache_write_tokens, first.usage.cached_tokens) == (25, 0)
    assert (second.usage.cache_write_tokens, second.usage.cached_tokens) == (0, 25)
    assert first.usage.input_tokens == second.usage.input_tokens == 25 + 6  # prompt total includes cache
    assert first.body["usage"]["cache_creation_input_tokens"] == 25
    assert second.body["usage"]["prompt_tokens_details"]["cached_tokens"] == 25
    model = call(MODEL, {}).model  # claude-haiku-4-5: $1 in, $0.10 cache read, $1.25 cache write, $5 out
    assert cost_of(model, first.usage, 0).provider_micros == -(-(6 * 1_000_000 + 25 * 1_250_000 + 4 * 5_000_000) // 10**6)
    assert cost_of(model, second.usage, 0).provider_micros == -(-(6 * 1_000_000 + 25 * 100_000 + 4 * 5_000_000) // 10**6)
    streamed = await collect(adapter.stream_chat(call(MODEL, body)))
    assert streamed[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 25


@pytest.mark.parametrize(
    ("status", "error", "transient"),
    [(529, ProviderUnavailable, True), (429, ProviderRateLimited, True), (500, ProviderUnavailable, True),
     (401, ProviderAuthError, False), (400, ProviderBadRequest, False)],
)
async def test_errors_map_to_the_provider_tree(adapter, fake_anthropic, status, error, transient):
    fake_anthropic.script([Fault(status=status, retry_after=2, message="nope")])
    with pytest.raises(error) as caught:
        await adapter.chat(call(MODEL, {"messages": USER}))
    assert caught.value.transient is transient and caught.value.message == "nope"
    if transient:
        assert caught.value.retry_after == 2.0


async def test_stream_errors(adapter, fake_anthropic):
    fake_anthropic.script([Fault(status=529)])
    with pytest.raises(ProviderUnavailable):
        await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    fake_anthropic.script([StreamFault(error_event_after=3, error_type="overloaded_error", message="Overloaded")])
    with pytest.raises(ProviderUnavailable, match="Overloaded"):
        await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    fake_anthropic.script([Fault(cut_after_chunks=4)])
    with pytest.raises((ProviderBadResponse, ProviderConnectionError)):
        await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    fake_anthropic.script([Fault(malformed_json=True)])
    with pytest.raises(ProviderBadResponse):
        await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    fake_anthropic.script([Fault(malformed_json=True)])
    with pytest.raises(ProviderBadResponse):
        await adapter.chat(call(MODEL, {"messages": USER}))


async def test_embeddings_are_refused_clearly(adapter):
    with pytest.raises(ProviderBadRequest, match="no embeddings API"):
        await adapter.embed(call(MODEL, {"input": "x"}))


# -- the official SDK against the fake --------------------------------------------------


@pytest.fixture
def sdk(fake_anthropic):
    with anthropic.Anthropic(base_url=fake_anthropic.base_url, api_key=ANTHROPIC_KEY, max_retries=0) as client:
        yield client


def test_sdk_plain_and_tool_use(sdk):
    message = sdk.messages.create(model="claude-haiku-4-5", max_tokens=100, system="terse",
                                  messages=[{"role": "user", "content": "hi there"}])
    assert message.content[0].text == "Echo: hi there" and message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 1 + 2 + 3 and message.usage.output_tokens == 3
    tool = sdk.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "weather"}],
        tools=[{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}],
    )
    assert tool.stop_reason == "tool_use" and tool.content[1].type == "tool_use"
    assert tool.content[1].input == {"text": "weather"}


def test_sdk_stream_accumulates_the_same_message(sdk):
    with sdk.messages.stream(model="claude-haiku-4-5", max_tokens=100,
                             messages=[{"role": "user", "content": "stream me please"}],
                             tools=[{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}]) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "Let me use lookup."
    assert final.content[1].input == {"text": "stream me please"}
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 4 + 5


def test_sdk_error_classes(sdk, fake_anthropic):
    fake_anthropic.script([Fault(status=529), Fault(status=429, retry_after=1), Fault(status=400, message="bad")])
    request = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        sdk.messages.create(**request)
    assert overloaded.value.status_code == 529 and overloaded.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.RateLimitError) as limited:
        sdk.messages.create(**request)
    assert limited.value.response.headers["retry-after"] == "1"
    with pytest.raises(anthropic.BadRequestError, match="bad"):
        sdk.messages.create(**request)
    with anthropic.Anthropic(base_url=fake_anthropic.base_url, api_key="wrong", max_retries=0) as bad_key:
        with pytest.raises(anthropic.AuthenticationError):
            bad_key.messages.create(**request)

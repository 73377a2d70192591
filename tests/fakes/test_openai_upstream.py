"""Tests for the fake OpenAI upstream itself, driven through the official SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import (
    FakeOpenAI,
    Fault,
    count_prompt_tokens,
    count_words,
    embed_text,
    reply_text,
)

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "hello there  friend"},
]
NO_PARAMS = {"type": "object", "properties": {}}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": NO_PARAMS}},
    {"type": "function", "function": {"name": "other", "parameters": NO_PARAMS}},
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test") as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


def chat(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **kwargs)


def stream(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **kwargs)


def test_plain_chat(client: openai.OpenAI) -> None:
    resp = chat(client)
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-4o-mini"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "Echo: hello there  friend"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == count_prompt_tokens(MESSAGES) == 3 + 3 + 3 + 3
    assert resp.usage.completion_tokens == count_words("Echo: hello there  friend") == 4
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert resp.usage.prompt_tokens_details and resp.usage.prompt_tokens_details.cached_tokens == 0


def test_multipart_content_and_max_tokens(client: openai.OpenAI) -> None:
    parts = [{"type": "text", "text": "one two"}, {"type": "text", "text": "three"}]
    messages: list[Any] = [{"role": "user", "content": parts}]
    assert reply_text(messages) == "Echo: one two three"
    resp = client.chat.completions.create(model="m", messages=messages, max_tokens=2)
    assert resp.choices[0].message.content == "Echo: one" == reply_text(messages, 2)
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage and resp.usage.completion_tokens == 2


def test_streamed_chat_with_usage(client: openai.OpenAI) -> None:
    expected = chat(client).choices[0].message.content
    chunks = list(stream(client, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == expected
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == count_prompt_tokens(MESSAGES)
    assert chunks[-1].usage.completion_tokens == count_words(expected or "")


def test_stream_wire_format_ends_with_done(fake: FakeOpenAI) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    headers = {"authorization": "Bearer sk-test"}
    resp = httpx.post(f"{fake.base_url}/chat/completions", json=body, headers=headers)
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.text.endswith("data: [DONE]\n\n")
    assert '"usage"' not in resp.text  # only sent when include_usage is requested


def test_tool_call(client: openai.OpenAI) -> None:
    resp = chat(client, tools=TOOLS)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert call.function.arguments == "{}"
    assert chat(client, tools=TOOLS, tool_choice="none").choices[0].message.tool_calls is None


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    chunks = list(stream(client, tools=TOOLS))
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function and calls[0].function.name == "get_weather"
    assert "".join(tc.function.arguments or "" for tc in calls if tc.function) == "{}"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_embeddings_float_and_base64(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    floats = client.embeddings.create(model="emb", input=["a b", "c"], encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    assert floats.data[0].embedding == embed_text("a b") and len(floats.data[0].embedding) == 8
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == 3
    # The SDK asks for base64 by default and decodes it; values must survive exactly.
    decoded = client.embeddings.create(model="emb", input="a b")
    assert fake.requests[-1].body["encoding_format"] == "base64"
    assert decoded.data[0].embedding == embed_text("a b")


def test_models_list(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-mini" in ids


def test_bad_key_is_401(fake: FakeOpenAI) -> None:
    bad = openai.OpenAI(base_url=fake.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        chat(bad)
    assert exc.value.status_code == 401
    assert exc.value.type == "invalid_request_error" and exc.value.code == "invalid_api_key"
    assert isinstance(exc.value.body, dict) and exc.value.body["param"] is None
    missing = httpx.get(f"{fake.base_url}/models")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"


def test_any_key_when_api_key_is_none() -> None:
    with FakeOpenAI(api_key=None) as fake:
        with openai.OpenAI(base_url=fake.base_url, api_key="whatever", max_retries=0) as c:
            assert c.models.list().data


def test_rate_limit_with_retry_after(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script([Fault(status=429, retry_after=1.5)])
    with pytest.raises(openai.RateLimitError) as exc:
        chat(client)
    assert exc.value.response.headers["retry-after"] == "2"
    assert exc.value.response.headers["retry-after-ms"] == "1500"
    assert exc.value.type == "requests" and exc.value.code == "rate_limit_exceeded"


def test_server_error_then_script_drains(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script([Fault(status=500), Fault(status=503)])
    with pytest.raises(openai.InternalServerError) as exc:
        chat(client)
    assert exc.value.type == "server_error"
    with pytest.raises(openai.InternalServerError) as exc:
        chat(client)
    assert exc.value.status_code == 503
    assert chat(client).choices[0].message.content  # script exhausted → normal


def test_bad_request_with_custom_code(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script([Fault(status=400, code="context_length_exceeded")])
    with pytest.raises(openai.BadRequestError) as exc:
        chat(client)
    assert exc.value.type == "invalid_request_error" and exc.value.code == "context_length_exceeded"


def test_default_fault_applies_until_cleared(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.default_fault = Fault(status=503)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            chat(client)
    fake.default_fault = None
    assert chat(client).choices[0].message.content


def test_cut_stream_raises_during_iteration(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script([Fault(cut_after_chunks=2)])
    received = []
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        for chunk in stream(client):
            received.append(chunk)
    assert len(received) == 2


def test_malformed_json_raises(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script([Fault(malformed_json=True), Fault(malformed_json=True)])
    with pytest.raises(ValueError):  # json.JSONDecodeError
        chat(client)
    with pytest.raises(ValueError):
        list(stream(client))


def test_latency_is_observable(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script([Fault(latency=0.2)])
    start = time.monotonic()
    chat(client)
    assert time.monotonic() - start >= 0.2


def test_hang_times_out_client(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script([Fault(hang=True)])
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).models.list()


def test_requests_are_recorded(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    chat(client, temperature=0.5)
    client.models.list()
    first, second = fake.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.body["messages"] == MESSAGES and first.body["temperature"] == 0.5
    assert first.headers["authorization"] == "Bearer sk-test"
    assert (second.method, second.path, second.body) == ("GET", "/v1/models", None)
    fake.script([Fault(status=500)])
    fake.reset()
    assert fake.requests == [] and chat(client).choices[0].message.content

"""The Gemini adapter over real HTTP against the fake Gemini API."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from aibroker.providers.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderBadResponse,
    ProviderConnectionError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from tests.fakes.gemini_upstream import Fault, count_prompt_tokens, embed_text
from tests.providers.conftest import GEMINI_KEY
from tests.providers.helpers import LOOKUP, USER, call, collect, gemini_adapter, streamed_text

MODEL = "gemini/gemini-2.5-flash"


@pytest.fixture
async def adapter(fake_gemini):
    provider = gemini_adapter(fake_gemini.base_url)
    yield provider
    await provider.aclose()


async def test_plain_chat_roles_system_and_generation_config(adapter, fake_gemini):
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"}, *USER]
    body = {"messages": messages, "temperature": 0.2, "top_p": 0.9, "max_tokens": 50, "stop": ["END"]}
    result = await adapter.chat(call(MODEL, body))
    sent = fake_gemini.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == GEMINI_KEY
    assert sent.body["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert [c["role"] for c in sent.body["contents"]] == ["user", "model", "user"]
    assert sent.body["generationConfig"] == {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 50, "stopSequences": ["END"]}
    choice = result.body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Echo: hello there friend"}
    assert choice["finish_reason"] == "stop" and result.body["object"] == "chat.completion"
    assert result.usage.input_tokens == count_prompt_tokens(sent.body) and result.usage.output_tokens == 4


async def test_thinking_tokens_are_output_and_cached_tokens_reported(adapter, fake_gemini):
    fake_gemini.thinking_tokens, fake_gemini.cached_tokens = 7, 5
    result = await adapter.chat(call(MODEL, {"messages": USER}))
    assert (result.usage.output_tokens, result.usage.cached_tokens) == (4 + 7, 5)
    assert result.body["usage"]["completion_tokens"] == 11
    assert result.body["usage"]["prompt_tokens_details"]["cached_tokens"] == 5


async def test_json_response_format_and_schema(adapter, fake_gemini):
    schema = {"type": "object", "properties": {"echo": {"type": "string"}}, "additionalProperties": False}
    result = await adapter.chat(call(MODEL, {"messages": USER, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}}))
    config = fake_gemini.requests[-1].body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {"type": "object", "properties": {"echo": {"type": "string"}}}
    assert json.loads(result.body["choices"][0]["message"]["content"]) == {"echo": "Echo: hello there friend"}


async def test_function_calling_both_directions(adapter, fake_gemini):
    first = await adapter.chat(call(MODEL, {"messages": USER, "tools": [LOOKUP], "tool_choice": "required"}))
    sent = fake_gemini.requests[-1].body
    assert sent["tools"] == [{"functionDeclarations": [{"name": "lookup", "description": "Look something up.",
                                                        "parameters": LOOKUP["function"]["parameters"]}]}]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    message = first.body["choices"][0]["message"]
    assert first.body["choices"][0]["finish_reason"] == "tool_calls" and message["content"] is None
    [tool_call] = message["tool_calls"]
    assert json.loads(tool_call["function"]["arguments"]) == {"text": "hello there friend"}
    history = [*USER, message, {"role": "tool", "tool_call_id": tool_call["id"], "content": '{"forecast": "sunny"}'}]
    second = await adapter.chat(call(MODEL, {"messages": history, "tools": [LOOKUP]}))
    contents = fake_gemini.requests[-1].body["contents"]
    assert contents[1] == {"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"text": "hello there friend"}}}]}
    assert contents[2] == {"role": "user", "parts": [{"functionResponse": {"name": "lookup", "response": {"forecast": "sunny"}}}]}
    assert second.body["choices"][0]["message"]["content"] == 'Echo: {"forecast": "sunny"}'


async def test_images_inline_and_file(adapter, fake_gemini):
    content = [{"type": "text", "text": "describe"},
               {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
               {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    result = await adapter.chat(call(MODEL, {"messages": [{"role": "user", "content": content}]}))
    parts = fake_gemini.requests[-1].body["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}
    assert parts[2] == {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png"}}
    assert result.usage.input_tokens == 1 + 3 + 2 * 258


async def test_safety_blocks_are_content_filter(adapter):
    blocked = await adapter.chat(call(MODEL, {"messages": [{"role": "user", "content": "BLOCKME now"}]}))
    choice = blocked.body["choices"][0]
    assert choice["finish_reason"] == "content_filter" and choice["message"]["content"] is None
    assert "blockReason SAFETY" in choice["message"]["refusal"]
    assert blocked.usage.input_tokens == 5 and blocked.usage.output_tokens == 0
    stopped = await adapter.chat(call(MODEL, {"messages": [{"role": "user", "content": "UNSAFE thing"}]}))
    assert stopped.body["choices"][0]["finish_reason"] == "content_filter"
    assert "finishReason SAFETY" in stopped.body["choices"][0]["message"]["refusal"]
    chunks = await collect(adapter.stream_chat(call(MODEL, {"messages": [{"role": "user", "content": "BLOCKME"}]})))
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter"
    assert "blockReason" in chunks[-2]["choices"][0]["delta"]["refusal"]


async def test_stream_text_tools_and_usage(adapter, fake_gemini):
    fake_gemini.thinking_tokens = 2
    chunks = await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    assert fake_gemini.requests[-1].path.endswith(":streamGenerateContent")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert streamed_text(chunks) == "Echo: hello there friend"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 4 + 2 and chunks[-1]["usage"]["prompt_tokens"] == 6
    tool_chunks = await collect(adapter.stream_chat(call(MODEL, {"messages": USER, "tools": [LOOKUP]})))
    calls = [tc for c in tool_chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["index"] == 0 and calls[0]["function"]["name"] == "lookup"
    assert tool_chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_embeddings_single_and_batch(adapter, fake_gemini):
    one = await adapter.embed(call("gemini/gemini-embedding-001", {"input": "hello"}))
    assert fake_gemini.requests[-1].path.endswith("gemini-embedding-001:embedContent")
    assert one.body["data"][0]["embedding"] == embed_text("hello") and one.body["object"] == "list"
    many = await adapter.embed(call("gemini/gemini-embedding-001", {"input": ["a b", "c"], "dimensions": 4,
                                                                      "encoding_format": "base64"}))
    sent = fake_gemini.requests[-1].body["requests"]
    assert sent[0] == {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a b"}]},
                       "outputDimensionality": 4}
    decoded = struct.unpack("<4f", base64.b64decode(many.body["data"][1]["embedding"]))
    assert list(decoded) == embed_text("c")[:4]
    assert many.usage.input_tokens == 2 and many.usage.estimated  # no counts upstream: ~4 chars a token


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, ProviderRateLimited), (503, ProviderUnavailable), (500, ProviderUnavailable), (400, ProviderBadRequest)],
)
async def test_errors_map_to_the_provider_tree(adapter, fake_gemini, status, error):
    fake_gemini.script([Fault(status=status, retry_after=3, message="quota")])
    with pytest.raises(error, match="quota") as caught:
        await adapter.chat(call(MODEL, {"messages": USER}))
    if caught.value.transient:
        assert caught.value.retry_after == 3.0  # from google.rpc.RetryInfo


async def test_bad_key_is_an_auth_error(fake_gemini):
    provider = gemini_adapter(fake_gemini.base_url, key="wrong")
    try:
        with pytest.raises(ProviderAuthError, match="API key not valid"):
            await provider.chat(call(MODEL, {"messages": USER}))
    finally:
        await provider.aclose()


async def test_stream_faults(adapter, fake_gemini):
    fake_gemini.script([Fault(status=503)])
    with pytest.raises(ProviderUnavailable):
        await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    fake_gemini.script([Fault(cut_after_chunks=2)])
    with pytest.raises((ProviderBadResponse, ProviderConnectionError)):
        await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    fake_gemini.script([Fault(malformed_json=True)])
    with pytest.raises(ProviderBadResponse):
        await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    fake_gemini.script([Fault(malformed_json=True)])
    with pytest.raises(ProviderBadResponse):
        await adapter.chat(call(MODEL, {"messages": USER}))

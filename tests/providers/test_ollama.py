"""The Ollama adapter over real HTTP against the fake Ollama server, and discovery."""

from __future__ import annotations

import json

import pytest

from aibroker.catalog.registry import CHAT, EMBEDDING
from aibroker.catalog.service import Catalog
from aibroker.providers.errors import (
    ProviderBadRequest,
    ProviderBadResponse,
    ProviderConnectionError,
    ProviderUnavailable,
)
from tests.fakes.ollama_upstream import Fault, StreamFault, count_prompt_tokens, embed_text
from tests.providers.helpers import LOOKUP, USER, call, collect, ollama_adapter, streamed_text

MODEL = "ollama/llama3.2"


@pytest.fixture
async def adapter(fake_ollama):
    provider = ollama_adapter(fake_ollama.base_url)
    yield provider
    await provider.aclose()


async def test_plain_chat_options_and_usage(adapter, fake_ollama):
    messages = [{"role": "developer", "content": "Be terse."}, *USER]
    result = await adapter.chat(call(MODEL, {"messages": messages, "temperature": 0.3, "max_tokens": 64}))
    sent = fake_ollama.requests[-1].body
    assert sent["stream"] is False and sent["model"] == "llama3.2"
    assert sent["options"] == {"temperature": 0.3, "num_predict": 64}
    assert sent["messages"][0] == {"role": "system", "content": "Be terse."}
    assert result.body["choices"][0]["message"] == {"role": "assistant", "content": "Echo: hello there friend"}
    assert result.body["choices"][0]["finish_reason"] == "stop"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (count_prompt_tokens(sent["messages"]), 4)
    short = await adapter.chat(call(MODEL, {"messages": USER, "max_tokens": 1}))
    assert short.body["choices"][0]["finish_reason"] == "length"


async def test_stream_ndjson(adapter):
    chunks = await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    assert streamed_text(chunks) == "Echo: hello there friend"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10,
                                   "prompt_tokens_details": {"cached_tokens": 0}}


async def test_tools_both_directions(adapter, fake_ollama):
    first = await adapter.chat(call(MODEL, {"messages": USER, "tools": [LOOKUP]}))
    assert fake_ollama.requests[-1].body["tools"] == [LOOKUP]
    message = first.body["choices"][0]["message"]
    assert first.body["choices"][0]["finish_reason"] == "tool_calls" and message["content"] is None
    [tool_call] = message["tool_calls"]
    assert json.loads(tool_call["function"]["arguments"]) == {"text": "hello there friend"}
    history = [*USER, message, {"role": "tool", "tool_call_id": tool_call["id"], "content": "sunny"}]
    second = await adapter.chat(call(MODEL, {"messages": history, "tools": [LOOKUP]}))
    sent = fake_ollama.requests[-1].body["messages"]
    assert sent[1]["tool_calls"] == [{"function": {"name": "lookup", "arguments": {"text": "hello there friend"}}}]
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_name": "lookup"}
    assert second.body["choices"][0]["message"]["content"] == "Echo: sunny"
    streamed = await collect(adapter.stream_chat(call(MODEL, {"messages": USER, "tools": [LOOKUP]})))
    calls = [tc for c in streamed if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["function"]["name"] == "lookup" and streamed[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_embeddings(adapter, fake_ollama):
    result = await adapter.embed(call("ollama/nomic-embed-text", {"input": ["one two", "three"]}))
    assert fake_ollama.requests[-1].body == {"model": "nomic-embed-text", "input": ["one two", "three"]}
    assert [d["embedding"] for d in result.body["data"]] == [embed_text("one two"), embed_text("three")]
    assert result.usage.input_tokens == 3


async def test_errors(adapter, fake_ollama):
    fake_ollama.script([Fault(status=503, message="server busy")])
    with pytest.raises(ProviderUnavailable, match="server busy"):
        await adapter.chat(call(MODEL, {"messages": USER}))
    with pytest.raises(ProviderBadRequest, match="not found"):  # 404 from a model not pulled
        await adapter.chat(call("ollama/llama3.1", {"messages": USER}))
    fake_ollama.script([StreamFault(error_event_after=2, message="model crashed")])
    with pytest.raises(ProviderBadResponse, match="model crashed"):
        await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    fake_ollama.script([Fault(cut_after_chunks=2)])
    with pytest.raises((ProviderBadResponse, ProviderConnectionError)):
        await collect(adapter.stream_chat(call(MODEL, {"messages": USER})))
    with pytest.raises(ProviderBadRequest, match="data URLs"):
        await adapter.chat(call(MODEL, {"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]}]}))


async def test_discovery_registers_unknown_models_at_zero_cost(adapter):
    found = await adapter.list_models()
    catalog = Catalog({"ollama"})
    added = {e.id: e for e in catalog.register_discovered(found)}
    # llama3.2:latest and nomic-embed-text:latest are the packaged entries: not added twice.
    assert set(added) == {"ollama/qwen2.5:7b", "ollama/phi4-mini:latest", "ollama/mxbai-embed-large:latest"}
    assert added["ollama/mxbai-embed-large:latest"].kind == EMBEDDING
    phi = catalog.resolve("phi4-mini:latest")
    assert phi.kind == CHAT and (phi.input_micros_per_m, phi.output_micros_per_m) == (0, 0)
    assert catalog.resolve("ollama/qwen2.5:7b").name == "qwen2.5:7b"

"""Malformed AI requests are refused before any upstream call or charge (issue 18, item 14):
400, unbilled, with an OpenAI error object (Anthropic's envelope on /v1/messages)."""

from __future__ import annotations

from typing import Any

import pytest

USER = {"role": "user", "content": "hello"}
CHAT = {"model": "openai/gpt-4o-mini", "messages": [USER]}
EMBED = {"model": "openai/text-embedding-3-small", "input": "hello"}
MESSAGES = {"model": "openai/gpt-4o-mini", "max_tokens": 16, "messages": [USER]}

BAD_CHAT: dict[str, dict[str, Any]] = {
    "user message without content": {**CHAT, "messages": [{"role": "user"}]},
    "user message with null content": {**CHAT, "messages": [{"role": "user", "content": None}]},
    "system message without content": {**CHAT, "messages": [{"role": "system"}, USER]},
    "tool message without tool_call_id": {**CHAT, "messages": [USER, {"role": "tool", "content": "42"}]},
    "assistant message with neither content nor tool calls": {**CHAT, "messages": [USER, {"role": "assistant"}, USER]},
    "unknown content part type": {**CHAT, "messages": [{"role": "user", "content": [{"type": "hologram", "text": "x"}]}]},
    "text part without text": {**CHAT, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
    "image part without url": {**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
    "content part that is not an object": {**CHAT, "messages": [{"role": "user", "content": ["hello"]}]},
    "stream as a string": {**CHAT, "stream": "yes"},
    "stream_options.include_usage as a string": {**CHAT, "stream": True, "stream_options": {"include_usage": "yes"}},
    "bogus tool_choice string": {**CHAT, "tool_choice": "whenever"},
    "bogus tool_choice object": {**CHAT, "tool_choice": {"type": "function"}},
    "bogus response_format": {**CHAT, "response_format": {"type": "yaml"}},
    "json_schema response_format without its schema": {**CHAT, "response_format": {"type": "json_schema"}},
    "tool without a function": {**CHAT, "tools": [{"type": "function"}]},
    "tool of unknown type": {**CHAT, "tools": [{"type": "magic", "function": {"name": "f"}}]},
    "max_tokens as a string": {**CHAT, "max_tokens": "16"},
    "max_tokens beyond any column": {**CHAT, "max_tokens": 10**30},
    "messages as an object": {**CHAT, "messages": {"role": "user", "content": "hi"}},
}

BAD_EMBED: dict[str, dict[str, Any]] = {
    "input [[]]": {**EMBED, "input": [[]]},
    "input ['']": {**EMBED, "input": [""]},
    "input of mixed types": {**EMBED, "input": ["a", 1]},
    "negative token ids": {**EMBED, "input": [-1, 2]},
    "input null": {**EMBED, "input": None},
    "bogus encoding_format": {**EMBED, "encoding_format": "hex"},
}

BAD_MESSAGES: dict[str, dict[str, Any]] = {
    "text block without text": {**MESSAGES, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
    "text block with null text": {**MESSAGES, "messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
    "assistant text block without text": {
        **MESSAGES, "messages": [USER, {"role": "assistant", "content": [{"type": "text"}]}, USER],
    },
    "system text block without text": {**MESSAGES, "system": [{"type": "text"}]},
    "stream as a string": {**MESSAGES, "stream": "yes"},
    "bogus tool_choice": {**MESSAGES, "tool_choice": {"type": "sometimes"}},
    "max_tokens as a string": {**MESSAGES, "max_tokens": "16"},
}


@pytest.fixture
def org(broker):
    return broker.create_org("Careless", plan="unlimited")


def _usage_rows(broker) -> int:
    broker.flush()
    return broker.scalar("SELECT count(*) FROM usage_records")


def _balance(broker) -> int:
    broker.flush()
    return broker.scalar("SELECT balance_micros FROM wallets")


def _refused_unbilled(broker, org, upstream, path: str, bad: dict[str, dict[str, Any]], good: dict[str, Any]) -> None:
    before = _balance(broker)
    answers = {}
    with broker.client(org["api_key"]) as client:
        for name, body in bad.items():
            answers[name] = client.post(path, json=body)
        served = client.post(path, json=good)
    assert served.status_code == 200, served.text  # the same route serves a well-formed body
    wrong = {name: (r.status_code, r.text[:200]) for name, r in answers.items() if r.status_code != 400}
    assert wrong == {}
    for name, response in answers.items():
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error", name
        assert error["message"], name
    assert len(upstream.requests) == 1  # only the well-formed call went upstream
    assert _usage_rows(broker) == 1
    assert _balance(broker) < before  # the good one was billed, so the count above is the bad ones' zero


def test_malformed_chat_requests_are_400_and_unbilled(broker, org, upstream):
    _refused_unbilled(broker, org, upstream, "/v1/chat/completions", BAD_CHAT, CHAT)


def test_malformed_embedding_requests_are_400_and_unbilled(broker, org, upstream):
    _refused_unbilled(broker, org, upstream, "/v1/embeddings", BAD_EMBED, EMBED)


def test_malformed_anthropic_messages_are_400_in_anthropics_envelope(broker, org, upstream):
    answers = {}
    with broker.client(org["api_key"]) as client:
        for name, body in BAD_MESSAGES.items():
            answers[name] = client.post("/v1/messages", json=body)
        served = client.post("/v1/messages", json=MESSAGES)
    assert served.status_code == 200, served.text
    wrong = {name: (r.status_code, r.text[:200]) for name, r in answers.items() if r.status_code != 400}
    assert wrong == {}
    for name, response in answers.items():
        body = response.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", name
    assert len(upstream.requests) == 1
    assert _usage_rows(broker) == 1


def test_well_formed_variants_are_still_served(broker, org, upstream):
    """What the checks must not refuse: assistant tool calls without content, typed parts,
    named tool choice, json_schema format, a batch of embeddings."""
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    chats = [
        {**CHAT, "messages": [USER, {"role": "assistant", "content": None, "tool_calls": [call]},
                              {"role": "tool", "tool_call_id": "call_1", "content": "42"}]},
        {**CHAT, "messages": [{"role": "user", "content": [{"type": "text", "text": "look"},
                                                           {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
        {**CHAT, "tools": [tool], "tool_choice": {"type": "function", "function": {"name": "lookup"}}},
        {**CHAT, "tools": [tool], "tool_choice": "required"},
        {**CHAT, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}},
        {**CHAT, "response_format": {"type": "text"}, "max_tokens": 16},
    ]
    with broker.client(org["api_key"]) as client:
        answers = [client.post("/v1/chat/completions", json=body) for body in chats]
        answers.append(client.post("/v1/embeddings", json={**EMBED, "input": ["one", "two"]}))
    assert [(r.status_code, r.text[:160]) for r in answers if r.status_code != 200] == []

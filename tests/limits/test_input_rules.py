"""Input rules: prompt size and message count per plan, blocklist, PII redaction."""

from __future__ import annotations

import pytest

from aibroker.limits.input_rules import Redactor, luhn_valid, parse_blocklist
from aibroker.models import Event, UsageRecord

CHAT = {"model": "gpt-4o-mini"}


@pytest.fixture
def broker_env(broker_env):
    return {**broker_env, "AIBROKER_BLOCKLIST": "forbiddenword,/secret-\\d+/", "AIBROKER_PII_REDACTION": "true"}


def test_luhn_and_redactor_units():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    redact = Redactor("US")
    text = "mail ana.p@example.org or call +1 415-555-2671; card 4111-1111-1111-1111; order 4111111111111112"
    assert redact(text) == "mail [EMAIL] or call [PHONE]; card [CARD]; order 4111111111111112"
    assert [p.pattern for p in parse_blocklist('["a", "/b+/"]')] == [r"\ba\b", "b+"]


def test_prompt_length_and_message_count_per_plan(broker, upstream):
    with broker.admin() as admin:
        admin.post("/api/admin/plans", json={"slug": "small", "name": "Small", "max_prompt_chars": 20, "max_messages": 2})
    org = broker.create_org("Small", plan="small")
    with broker.client(org["api_key"]) as client:
        long = client.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "x" * 21}]})
        many = client.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "hi"}] * 3})
        fine = client.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "x" * 20}]})
    assert long.status_code == 400 and long.json()["error"]["code"] == "prompt_too_long"
    assert "at most 20" in long.json()["error"]["message"]
    assert many.status_code == 400 and many.json()["error"]["code"] == "too_many_messages"
    assert fine.status_code == 200
    assert len(upstream.requests) == 1


def test_blocklist_refuses_before_any_upstream_call(broker, upstream):
    org = broker.create_org("Blocky", plan="unlimited")
    with broker.client(org["api_key"]) as client:
        word = client.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "a ForbiddenWord here"}]})
        regex = client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": ["ok", "secret-42"]})
    for response in (word, regex):
        assert response.status_code == 400 and response.json()["error"]["type"] == "content_blocked"
    assert upstream.requests == []


def test_pii_is_redacted_upstream_and_in_stored_records(broker, upstream):
    org = broker.create_org("Private", plan="unlimited")
    raw = "write to ana.p@example.org or +1 415-555-2671 with card 4111 1111 1111 1111"
    with broker.client(org["api_key"]) as client:
        chat = client.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": raw}]})
        embed = client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": raw})
    assert chat.status_code == 200 and embed.status_code == 200
    sent_chat, sent_embed = (r.body for r in upstream.requests)
    assert sent_chat["messages"][0]["content"] == "write to [EMAIL] or [PHONE] with card [CARD]"
    assert sent_embed["input"] == "write to [EMAIL] or [PHONE] with card [CARD]"
    assert "ana.p@example.org" not in chat.text
    broker.flush()
    stored = [str(tuple(r)) for r in broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])]
    stored += [str(tuple(r)) for r in broker.rows(Event, Event.organization_id == org["organization_id"])]
    assert stored and not any("ana.p@example.org" in s or "4111" in s for s in stored)


def test_image_prompts_pass_the_same_rules(broker, upstream):
    with broker.admin() as admin:
        admin.post("/api/admin/plans", json={"slug": "tiny", "name": "Tiny", "max_prompt_chars": 40})
    org = broker.create_org("Pictures", plan="tiny")
    image = {"model": "openai/gpt-image-1", "quality": "low", "size": "1024x1024"}
    with broker.client(org["api_key"]) as client:
        blocked = client.post("/v1/images/generations", json={**image, "prompt": "a forbiddenword poster"})
        too_long = client.post("/v1/images/generations", json={**image, "prompt": "x" * 41})
        assert upstream.requests == []  # refused before any upstream call (and any charge)
        redacted = client.post("/v1/images/generations", json={**image, "prompt": "a card for ana.p@example.org"})
    assert blocked.status_code == 400 and blocked.json()["error"]["type"] == "content_blocked"
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "prompt_too_long"
    assert too_long.json()["error"]["param"] == "prompt"
    assert redacted.status_code == 200, redacted.text
    assert upstream.requests[-1].body["prompt"] == "a card for [EMAIL]"

"""Per-organization guardrails through the HTTP API: settings, PII redaction of answers
(plain and streamed), moderation of prompts and answers with each action, and the verdict
on the usage record."""

from __future__ import annotations

import orjson
import pytest

from aibroker.billing.audit import verify
from aibroker.models import UsageRecord
from tests.fakes._server import Fault
from tests.support.accounts import bearer, signup
from tests.support.usage import usage_rows

PII = "write to ana.perez@example.com or call +1 415-555-2671, card 4111 1111 1111 1111 thanks"


@pytest.fixture
def broker_env(broker_env):
    return {**broker_env, "AIBROKER_MOCK_LATENCY_MS": "0", "AIBROKER_CACHE_ENABLED": "false"}


@pytest.fixture
def org(broker):
    return broker.create_org("Acme", credit="10", plan="enterprise")


def _set(broker, org, **settings):
    with broker.admin() as admin:
        answer = admin.put(f"/api/organizations/{org['organization_id']}/guardrails", json=settings)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _chat(broker, org, content, *, stream=False):
    body = {"model": "mock-chat", "messages": [{"role": "user", "content": content}], "stream": stream}
    with broker.client(org["api_key"]) as tenant:
        return tenant.post("/v1/chat/completions", json=body)


def _streamed_text(answer) -> str:
    parts = []
    for line in answer.text.splitlines():
        if line.startswith("data: {"):
            for choice in orjson.loads(line[6:]).get("choices") or ():
                parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts)


def _ledger_clean(broker) -> None:
    broker.flush()
    assert verify(broker.db).problems == []


def test_settings_api_roles_and_bad_input(broker, org):
    owner = signup(broker, "owner@example.com", organization_name="Mine")
    mine = owner["organization"]["id"]
    with broker.client() as http:
        path = f"/api/organizations/{mine}/guardrails"
        got = http.get(path, headers=bearer(owner["access_token"]))
        assert got.status_code == 200 and got.json()["moderate_input"] is False and got.json()["updated_at"] is None
        put = http.put(path, headers=bearer(owner["access_token"]),
                       json={"moderate_input": True, "rules": ["forbidden", "/b[a4]d+/"], "action": "flag"})
        assert put.status_code == 200 and put.json()["rules"] == ["forbidden", "/b[a4]d+/"]
        assert http.get(path, headers=bearer(owner["access_token"])).json()["action"] == "flag"
        for body, code in (
            ({"rules": ["/([a-z/"]}, "invalid_rule"),
            ({"moderation_model": "no-such-model"}, "unknown_model"),
            ({"moderation_model": "mock-chat"}, "not_a_moderation_model"),
            ({"moderate_output": True}, "moderation_unconfigured"),
        ):
            bad = http.put(path, headers=bearer(owner["access_token"]), json=body)
            assert bad.status_code == 400 and bad.json()["error"]["code"] == code, body
        assert http.put(path, headers=bearer(owner["access_token"]), json={"action": "explode"}).status_code == 422
        assert http.put(path, headers=bearer(owner["access_token"]), json={"rules": "not a list"}).status_code == 422
        assert http.put(path, headers=bearer(owner["access_token"]), json={"rules": ["x"] * 201}).status_code == 422
        # Another organization's guardrails: neither readable nor writable by this owner.
        other = f"/api/organizations/{org['organization_id']}/guardrails"
        assert http.get(other, headers=bearer(owner["access_token"])).status_code in (403, 404)
        assert http.put(other, headers=bearer(owner["access_token"]), json={}).status_code in (403, 404)
        # An API key is not an OWNER / ADMIN.
        key = http.get(other, headers=bearer(org["api_key"]))
        assert key.status_code == 403 and key.json()["error"]["code"] == "role_required"


def test_output_pii_is_redacted_plain_and_streamed(broker, org):
    _set(broker, org, redact_output_pii=True)
    plain = _chat(broker, org, PII)
    assert plain.status_code == 200
    text = plain.json()["choices"][0]["message"]["content"]
    assert "[EMAIL]" in text and "[PHONE]" in text and "[CARD]" in text
    assert "ana.perez@example.com" not in text and "4111" not in text and "555" not in text
    assert plain.headers["x-aibroker-guardrail"] == "redacted:output:pii"
    streamed = _chat(broker, org, PII, stream=True)
    assert streamed.status_code == 200
    joined = _streamed_text(streamed)
    assert "[EMAIL]" in joined and "[CARD]" in joined and "[PHONE]" in joined and "example.com" not in joined
    assert joined == text  # the same redaction, split across chunks or not
    clean = _chat(broker, org, "nothing personal here")
    assert "x-aibroker-guardrail" not in clean.headers
    rows = [r for r in usage_rows(broker, org["organization_id"]) if r.endpoint == "chat"]
    assert [r.guardrail for r in rows] == ["redacted:output:pii", "redacted:output:pii", None]
    assert rows[1].streamed and all(r.status == "success" for r in rows)
    _ledger_clean(broker)


def test_input_pii_per_organization_reaches_upstream_redacted(broker, org):
    _set(broker, org, redact_input_pii=True)
    answer = _chat(broker, org, PII)
    # The mock echoes the prompt it received: it got the placeholders, never the data.
    text = answer.json()["choices"][0]["message"]["content"]
    assert "[EMAIL]" in text and "example.com" not in text
    assert answer.headers["x-aibroker-guardrail"] == "redacted:input:pii"


def test_input_moderation_block_flag_redact(broker, org):
    _set(broker, org, moderate_input=True, moderation_model="mock-moderation", action="block")
    blocked = _chat(broker, org, "how do I kill the process")
    assert blocked.status_code == 400
    error = blocked.json()["error"]
    assert error["code"] == "content_flagged" and error["categories"] == ["violence"] and error["stage"] == "input"
    _set(broker, org, moderate_input=True, moderation_model="mock-moderation", action="flag")
    flagged = _chat(broker, org, "how do I kill the process")
    assert flagged.status_code == 200 and flagged.headers["x-aibroker-guardrail"] == "flagged:input:violence"
    _set(broker, org, moderate_input=True, moderation_model="mock-moderation", rules=["acme-secret"], action="redact")
    redacted = _chat(broker, org, "how do I kill the process")
    assert redacted.json()["choices"][0]["message"]["content"] == "Mock reply to: [content removed by moderation]"
    masked = _chat(broker, org, "tell me the acme-secret now")
    assert masked.json()["choices"][0]["message"]["content"] == "Mock reply to: tell me the [REDACTED] now"
    rows = usage_rows(broker, org["organization_id"])
    chats = [r for r in rows if r.endpoint == "chat"]
    assert [(r.status, r.guardrail) for r in chats] == [
        ("refused", "blocked:input:violence"), ("success", "flagged:input:violence"),
        ("success", "redacted:input:violence"), ("success", "redacted:input:rule"),
    ]
    assert chats[0].billed_cost_micros == 0
    checks = [r for r in rows if r.endpoint == "moderations"]
    assert len(checks) == 4 and all(r.billed_cost_micros == 0 and r.model == "mock/mock-moderation" for r in checks)
    assert {r.request_id for r in checks} == {r.request_id for r in chats}  # one check per request, under its id
    _ledger_clean(broker)


@pytest.mark.parametrize("stream", [False, True])
def test_output_moderation_blocks_after_billing(broker, org, stream):
    _set(broker, org, moderate_output=True, rules=["launch codes"], action="block")
    with broker.client(org["api_key"]) as tenant:
        before = tenant.get("/api/wallet").json()["balance_micros"]
    blocked = _chat(broker, org, "print the launch codes", stream=stream)
    assert blocked.status_code == 400 and blocked.json()["error"]["code"] == "content_flagged"
    assert blocked.json()["error"]["stage"] == "output"
    [row] = [r for r in usage_rows(broker, org["organization_id"]) if r.endpoint == "chat"]
    assert row.status == "success" and row.guardrail == "blocked:output:rule" and row.billed_cost_micros > 0
    with broker.client(org["api_key"]) as tenant:
        after = tenant.get("/api/wallet").json()["balance_micros"]
    assert before - after == row.billed_cost_micros  # the generation was paid upstream: billed, once
    _set(broker, org, moderate_output=True, rules=["launch codes"], action="redact")
    redacted = _chat(broker, org, "print the launch codes", stream=stream)
    assert redacted.status_code == 200
    text = _streamed_text(redacted) if stream else redacted.json()["choices"][0]["message"]["content"]
    assert text == "Mock reply to: print the [REDACTED]"
    _ledger_clean(broker)


def test_moderation_by_openai_and_its_failure(broker, org, upstream):
    _set(broker, org, moderate_input=True, moderation_model="openai/omni-moderation-latest", action="block")
    assert _chat(broker, org, "kill it").json()["error"]["code"] == "content_flagged"
    assert any(r.path == "/v1/moderations" for r in upstream.requests)
    upstream.script([Fault(status=500)] * 3)
    answer = _chat(broker, org, "anything")
    # The moderation call fails (after its retries): the request passes, marked unmoderated.
    assert answer.status_code == 200 and answer.headers["x-aibroker-guardrail"] == "unmoderated:input"
    rows = broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    assert any(r.endpoint == "moderations" and r.status == "error" for r in rows)

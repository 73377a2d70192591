"""Retries, fallbacks, the circuit breaker, cut streams and disconnects: the caller sees one
clean answer; failed attempts are recorded but never billed; holds are always released."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from aibroker.models import LedgerEntry, UsageRecord, Wallet
from tests.fakes.openai_upstream import Fault

MESSAGES = [{"role": "user", "content": "are you there"}]


@pytest.fixture
def org(broker):
    return broker.create_org("Resilient", credit="10")


def _rows(broker, org_id):
    broker.flush()
    # One request per test here: its attempts in order (ids are only millisecond-ordered).
    return sorted(broker.rows(UsageRecord, UsageRecord.organization_id == org_id), key=lambda r: (r.attempt, r.id))


def _debits(broker, org_id):
    return broker.rows(LedgerEntry, LedgerEntry.organization_id == org_id, LedgerEntry.kind == "debit")


def _wallet(broker, org_id):
    broker.flush()  # idle wallet leases go back first: `held` then shows only in-flight requests
    return broker.rows(Wallet, Wallet.organization_id == org_id)[0]


def test_transient_errors_are_retried_and_only_success_is_billed(broker, org, client, upstream):
    upstream.script([Fault(status=429, retry_after=0.01), Fault(status=503)])
    completion = client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content
    assert len(upstream.requests) == 3
    rows = _rows(broker, org["organization_id"])
    assert [(r.status, r.attempt) for r in rows] == [("error", 1), ("error", 2), ("success", 3)]
    assert [r.error_type for r in rows[:2]] == ["upstream_rate_limited", "upstream_unavailable"]
    assert [r.billed_cost_micros for r in rows[:2]] == [0, 0]
    [debit] = _debits(broker, org["organization_id"])
    assert debit.usage_record_id == rows[2].id and debit.amount_micros == -rows[2].billed_cost_micros
    assert _wallet(broker, org["organization_id"]).held_micros == 0


def test_permanent_upstream_error_is_not_retried_and_costs_nothing(broker, org, client, upstream):
    upstream.script([Fault(status=400, message="bad parameter xyz")])
    with pytest.raises(openai.BadRequestError, match="bad parameter xyz"):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert len(upstream.requests) == 1
    wallet = _wallet(broker, org["organization_id"])
    assert (wallet.balance_micros, wallet.held_micros) == (10_000_000, 0)
    assert _debits(broker, org["organization_id"]) == []


def test_exhausted_retries_fall_back_to_the_next_candidate(broker_env, database_url, monkeypatch, upstream):
    from tests.support.broker import BrokerServer

    for name, value in {**broker_env, "AIBROKER_DATABASE_URL": database_url,
                        "AIBROKER_FALLBACKS": json.dumps({"openai/gpt-4o-mini": ["mock/mock-chat"]})}.items():
        monkeypatch.setenv(name, value)
    server = BrokerServer(database_url)
    server.start()
    try:
        org = server.create_org("Fallback", credit="10")
        upstream.default_fault = Fault(status=500)
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=org["api_key"], max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="openai/gpt-4o-mini", messages=MESSAGES)
        assert raw.headers["x-aibroker-model"] == "mock/mock-chat"
        assert raw.parse().choices[0].message.content.startswith("Mock reply")
        rows = _rows(server, org["organization_id"])
        assert [r.provider for r in rows] == ["openai"] * 3 + ["mock"]
        assert [r.status for r in rows] == ["error"] * 3 + ["success"]
        assert len(_debits(server, org["organization_id"])) == 1
    finally:
        server.stop()


def test_all_candidates_failing_gives_one_clean_error_and_no_charge(broker, org, client, upstream):
    upstream.default_fault = Fault(status=503)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert info.value.status_code == 503
    assert info.value.body["type"] == "upstream_unavailable"
    wallet = _wallet(broker, org["organization_id"])
    assert (wallet.balance_micros, wallet.held_micros) == (10_000_000, 0)
    assert {r.billed_cost_micros for r in _rows(broker, org["organization_id"])} == {0}


def test_circuit_breaker_opens_after_repeated_failures(broker, org, client, upstream):
    upstream.default_fault = Fault(status=503)
    threshold = broker.settings.gateway.breaker_failures
    for _ in range(2):  # 2 requests x 3 attempts >= threshold of 5
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    calls = len(upstream.requests)
    assert calls >= threshold
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert "skipped" in info.value.message
    assert len(upstream.requests) == calls  # no call while the breaker is open


def test_mock_flaky_succeeds_after_a_retry(broker, org, client):
    completion = client.chat.completions.create(model="mock-flaky", messages=MESSAGES)
    assert completion.choices[0].message.content
    rows = _rows(broker, org["organization_id"])
    assert [r.status for r in rows] == ["error", "success"]


def test_malformed_upstream_json_is_retried(broker, org, client, upstream):
    upstream.script([Fault(malformed_json=True)])
    completion = client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content
    assert [r.error_type for r in _rows(broker, org["organization_id"])] == ["upstream_bad_response", None]


def test_timeout_is_retried(broker, org, client, upstream):
    broker.services.pool.get("openai")._http.timeout = 0.3
    upstream.script([Fault(hang=True)])
    completion = client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content
    assert [r.error_type for r in _rows(broker, org["organization_id"])] == ["upstream_timeout", None]


def test_stream_error_before_first_chunk_is_retried(broker, org, client, upstream):
    upstream.script([Fault(status=502)])
    chunks = list(client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [r.status for r in _rows(broker, org["organization_id"])] == ["error", "success"]


def test_cut_stream_ends_with_an_error_event_and_bills_what_was_generated(broker, org, upstream):
    upstream.script([Fault(cut_after_chunks=3)])
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "one two three four five six"}], "stream": True}
    with broker.client(org["api_key"]) as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] != "[DONE]"
    assert "error" in json.loads(events[-1])
    [row] = _rows(broker, org["organization_id"])
    assert row.status == "partial" and row.streamed
    assert row.output_tokens >= 2 and row.billed_cost_micros > 0
    [debit] = _debits(broker, org["organization_id"])
    assert debit.amount_micros == -row.billed_cost_micros
    assert _wallet(broker, org["organization_id"]).held_micros == 0


def test_client_disconnect_mid_stream_pays_for_what_was_generated(broker, org):
    body = {"model": "mock-chat", "messages": [{"role": "user", "content": " ".join(["word"] * 30)}], "stream": True}
    with broker.client(org["api_key"]) as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        for index, _line in enumerate(response.iter_lines()):
            if index >= 4:
                break  # leave mid-stream: closing the response drops the connection
    def settled() -> bool:
        broker.flush()
        rows = _rows(broker, org["organization_id"])
        return bool(rows) and _wallet(broker, org["organization_id"]).held_micros == 0

    _eventually(settled)
    rows = _rows(broker, org["organization_id"])
    [row] = rows  # settled exactly once, whether the stream had finished upstream or not
    assert row.streamed and row.billed_cost_micros > 0
    assert len(_debits(broker, org["organization_id"])) == 1


def test_client_disconnect_cancels_a_plain_call_and_releases_the_hold(broker, org):
    body = {"model": "mock-slow", "messages": MESSAGES}
    with broker.client(org["api_key"], timeout=0.1) as http, pytest.raises(httpx.TimeoutException):
        http.post("/v1/chat/completions", json=body)

    def released() -> bool:
        broker.flush()
        rows = _rows(broker, org["organization_id"])
        return bool(rows) and _wallet(broker, org["organization_id"]).held_micros == 0

    _eventually(released)
    [row] = _rows(broker, org["organization_id"])
    assert row.status == "cancelled" and row.billed_cost_micros == 0
    assert _wallet(broker, org["organization_id"]).balance_micros == 10_000_000


def _eventually(condition, timeout: float = 10.0) -> None:
    """Poll a condition the server reaches on its own (after it notices a disconnect)."""
    done = threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        done.wait(0.05)
    raise AssertionError("condition not reached in time")

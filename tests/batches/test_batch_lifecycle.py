"""Batch lifecycle on a broker whose batch jobs run one line per slice (so a test can stop
between lines): failed validation, per-line errors, cancel, expiry, limits, tenancy,
the plan's batch discount."""

from __future__ import annotations

import io

import openai
import pytest
from sqlalchemy import update

from aibroker.billing.audit import verify
from aibroker.kit.money import BPS, TOKENS_PER_PRICE_UNIT, ceil_div
from aibroker.models import Batch, Job
from tests.batches.support import chat_line, jsonl, process, read_jsonl, run_to_end, upload
from tests.support.broker import serving
from tests.support.usage import usage_rows

MAX_LINES = 20
MAX_BYTES = 4096


@pytest.fixture
def broker(database_url, broker_env, monkeypatch):
    env = {**broker_env, "AIBROKER_BATCH_SLICE_SECONDS": "0", "AIBROKER_BATCH_CONCURRENCY": "1",
           "AIBROKER_BATCH_MAX_LINES": str(MAX_LINES), "AIBROKER_MAX_FILE_BYTES": str(MAX_BYTES),
           "AIBROKER_MOCK_LATENCY_MS": "0"}
    with serving(database_url, env, monkeypatch) as server:
        yield server


def _create(client, lines, endpoint="/v1/chat/completions"):
    return client.batches.create(input_file_id=upload(client, lines).id, endpoint=endpoint, completion_window="24h")


def _clean(broker):
    broker.flush()
    report = verify(broker.db)
    assert report.ok, report.as_dict()


def test_an_invalid_input_file_fails_the_batch_with_its_errors(broker, org, client):
    lines = jsonl([chat_line("a", "one")]) + b"{not json\n" + jsonl([
        chat_line("a", "again"),  # duplicate custom_id
        {**chat_line("c", "three"), "url": "/v1/embeddings"},  # not the batch's endpoint
        {"custom_id": "d", "method": "POST", "url": "/v1/chat/completions"},  # no body
    ])
    batch = client.batches.create(input_file_id=upload(client, lines).id, endpoint="/v1/chat/completions", completion_window="24h")
    done = run_to_end(broker.url, client, batch.id)
    assert done.status == "failed" and done.failed_at and done.output_file_id is None
    errors = {(e.code, e.line) for e in done.errors.data}
    assert errors == {("invalid_json_line", 2), ("duplicate_custom_id", 3), ("invalid_url", 4), ("missing_required_parameter", 5)}
    assert usage_rows(broker, org["organization_id"]) == []  # nothing ran


def test_failing_lines_land_in_the_error_file_and_the_batch_goes_on(broker, org, client):
    lines = [chat_line("ok-1", "fine"), chat_line("bad-model", "x", model="nope/never"),
             chat_line("too-long", "x", max_tokens=10**9), chat_line("ok-2", "also fine")]
    done = run_to_end(broker.url, client, _create(client, lines).id)
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (4, 2, 2)
    assert set(read_jsonl(client, done.output_file_id)) == {"ok-1", "ok-2"}
    errors = read_jsonl(client, done.error_file_id)
    assert set(errors) == {"bad-model", "too-long"}
    for row in errors.values():
        assert 400 <= row["response"]["status_code"] < 500 and row["error"] is None
        assert row["response"]["body"]["error"]["message"] and row["response"]["body"]["error"]["type"]
    _clean(broker)


def test_lines_refused_for_balance_are_errors_and_nothing_is_charged_for_them(broker, client):
    poor = broker.create_org("Poor", credit="0.000001")
    poor_client = openai.OpenAI(base_url=broker.url + "/v1", api_key=poor["api_key"], max_retries=0)
    done = run_to_end(broker.url, poor_client, _create(poor_client, [chat_line("p1", "hello"), chat_line("p2", "hi")]).id)
    assert done.status == "completed" and done.request_counts.failed == 2
    errors = read_jsonl(poor_client, done.error_file_id)
    assert {row["response"]["status_code"] for row in errors.values()} == {402}
    assert {row["response"]["body"]["error"]["code"] for row in errors.values()} == {"insufficient_balance"}
    assert all(r.billed_cost_micros == 0 and r.batch_custom_id in ("p1", "p2") for r in usage_rows(broker, poor["organization_id"]))
    _clean(broker)


def test_cancel_stops_a_running_batch(broker, org, client):
    batch = _create(client, [chat_line(f"c{i}", f"line {i}") for i in range(5)])
    process(broker.url, max_jobs=1)  # validates, then runs one line
    running = client.batches.retrieve(batch.id)
    assert running.status == "in_progress" and running.request_counts.completed == 1
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    done = run_to_end(broker.url, client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 4)
    assert set(read_jsonl(client, done.output_file_id)) == {"c0"}
    errors = read_jsonl(client, done.error_file_id)
    assert set(errors) == {"c1", "c2", "c3", "c4"}
    assert all(row["response"] is None and row["error"]["code"] == "batch_cancelled" for row in errors.values())
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)
    assert len([r for r in usage_rows(broker, org["organization_id"]) if r.status == "success"]) == 1
    _clean(broker)


def test_a_batch_cancelled_while_validating_runs_nothing(broker, org, client):
    batch = _create(client, [chat_line("v1", "x")])
    assert client.batches.cancel(batch.id).status == "cancelling"
    done = run_to_end(broker.url, client, batch.id)
    assert done.status == "cancelled" and done.output_file_id is None and done.error_file_id is None
    assert usage_rows(broker, org["organization_id"]) == []


def test_lines_not_run_within_the_window_expire(broker, org, client):
    batch = _create(client, [chat_line(f"x{i}", f"line {i}") for i in range(4)])
    process(broker.url, max_jobs=1)
    with broker.db.begin() as conn:  # the 24 h window has passed
        conn.execute(update(Batch).where(Batch.id == batch.id).values(expires_at=Batch.created_at))
    done = run_to_end(broker.url, client, batch.id)
    assert done.status == "expired" and done.expired_at
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (4, 1, 3)
    assert set(read_jsonl(client, done.output_file_id)) == {"x0"}
    errors = read_jsonl(client, done.error_file_id)
    assert {row["error"]["code"] for row in errors.values()} == {"batch_expired"} and set(errors) == {"x1", "x2", "x3"}
    _clean(broker)


def test_upload_limits(broker, client):
    with pytest.raises(openai.APIStatusError) as too_big:
        client.files.create(file=("big.jsonl", io.BytesIO(b"x" * (MAX_BYTES + 100_000))), purpose="batch")
    assert too_big.value.status_code == 413 and too_big.value.body["code"] == "file_too_large"
    with pytest.raises(openai.APIStatusError) as streamed_big:  # within the form slack: caught while copying
        client.files.create(file=("big.jsonl", io.BytesIO(b"x" * (MAX_BYTES + 1))), purpose="batch")
    assert streamed_big.value.status_code == 413
    many = [chat_line(f"m{i}", "x") for i in range(MAX_LINES + 1)]
    with pytest.raises(openai.BadRequestError) as too_many:
        client.files.create(file=("many.jsonl", io.BytesIO(jsonl(many)[: MAX_BYTES])), purpose="batch")
    assert too_many.value.body["code"] in ("too_many_lines",)
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("a.jsonl", io.BytesIO(b"{}")), purpose="batch_output")  # the broker's own purpose
    assert client.files.list().data == []  # nothing refused was kept


def test_files_list_get_content_delete(broker, client):
    first = upload(client, [chat_line("a", "x")], name="one.jsonl")
    second = client.files.create(file=("notes.txt", io.BytesIO(b"plain bytes")), purpose="user_data")
    listed = client.files.list()
    assert [f.id for f in listed.data] == [second.id, first.id]
    assert [f.id for f in client.files.list(purpose="batch").data] == [first.id]
    page = client.files.list(limit=1, order="asc")
    assert [f.id for f in page.data] == [first.id] and page.has_more
    assert [f.id for f in client.files.list(limit=1, order="asc", after=first.id).data] == [second.id]
    assert client.files.content(second.id).content == b"plain bytes"
    assert client.files.retrieve(first.id).filename == "one.jsonl"
    deleted = client.files.delete(second.id)
    assert deleted.deleted and deleted.id == second.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(second.id)


def test_another_organizations_files_and_batches_are_not_found(broker, client):
    batch = _create(client, [chat_line("t1", "x")])
    source = batch.input_file_id
    other = broker.create_org("Other", credit="1")
    theirs = openai.OpenAI(base_url=broker.url + "/v1", api_key=other["api_key"], max_retries=0)
    for call in (lambda: theirs.files.retrieve(source), lambda: theirs.files.content(source),
                 lambda: theirs.files.delete(source), lambda: theirs.batches.retrieve(batch.id),
                 lambda: theirs.batches.cancel(batch.id),
                 lambda: theirs.batches.create(input_file_id=source, endpoint="/v1/chat/completions", completion_window="24h")):
        with pytest.raises(openai.NotFoundError):
            call()
    assert theirs.files.list().data == [] and theirs.batches.list().data == []
    assert [b.id for b in client.batches.list().data] == [batch.id]


def test_batch_create_refuses_bad_requests(broker, client):
    source = upload(client, [chat_line("a", "x")])
    notes = client.files.create(file=("n.txt", io.BytesIO(b"x")), purpose="user_data")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=source.id, endpoint="/v1/images/generations", completion_window="24h")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="48h")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as purpose:
        client.batches.create(input_file_id=notes.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert purpose.value.body["code"] == "invalid_file_purpose"


def test_the_plans_batch_discount_comes_off_the_charge(broker, client):
    with broker.admin() as admin:
        made = admin.post("/api/admin/plans", json={"slug": "batchy", "name": "Batchy", "batch_discount_bps": 5000})
        assert made.status_code == 201, made.text
        assert made.json()["batch_discount_bps"] == 5000
    org = broker.create_org("Discounted", credit="10", plan="batchy")
    theirs = openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)
    text = "seven words of text for the discount"
    theirs.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": text}])  # live: no discount
    done = run_to_end(broker.url, theirs, _create(theirs, [chat_line("d1", text), chat_line("d2", text + " again")]).id)
    assert done.status == "completed"
    rows = [r for r in usage_rows(broker, org["organization_id"]) if r.status == "success"]
    live = [r for r in rows if r.batch_id is None]
    batched = [r for r in rows if r.batch_id == done.id]
    assert len(live) == 1 and len(batched) == 2
    for row in rows:  # mock-chat: 1.00 / 2.00 USD per 1M tokens; the default 30% margin
        exact = row.input_tokens * 1_000_000 + row.output_tokens * 2_000_000
        discount = 5000 if row.batch_id else 0
        assert row.provider_cost_micros == ceil_div(exact, TOKENS_PER_PRICE_UNIT)
        assert row.billed_cost_micros == ceil_div(exact * (BPS + 3000) * (BPS - discount), BPS * BPS * TOKENS_PER_PRICE_UNIT)
    same = next(r for r in batched if r.batch_custom_id == "d1")
    assert (same.input_tokens, same.output_tokens) == (live[0].input_tokens, live[0].output_tokens)
    assert same.billed_cost_micros < live[0].billed_cost_micros
    _clean(broker)


def test_a_rate_limited_batch_waits_instead_of_failing_lines(broker):
    with broker.admin() as admin:
        assert admin.post("/api/admin/plans", json={"slug": "tight", "name": "Tight", "requests_per_minute": 2}).status_code == 201
    org = broker.create_org("Tight", credit="10", plan="tight")
    client = openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)
    batch = _create(client, [chat_line(f"t{i}", f"line {i}") for i in range(4)])
    outcome = process(broker.url)
    assert outcome["remaining_due"] == 0  # the next slice waits for the limit's window
    waiting = client.batches.retrieve(batch.id)
    assert waiting.status == "in_progress"
    assert (waiting.request_counts.completed, waiting.request_counts.failed) == (2, 0)
    pending = broker.rows(Job, Job.type == "batches.run", Job.status == "pending")
    assert len(pending) == 1 and pending[0].payload == {"batch_id": batch.id}
    _clean(broker)


def test_the_discount_is_set_from_the_command_line(broker):
    import os
    import subprocess

    from tests.support.fleet import AIBROKER, ROOT

    done = subprocess.run([AIBROKER, "plan", "update", "professional", "--fields", '{"batch_discount_bps": 2500}'], cwd=ROOT,
                          env={**os.environ, "AIBROKER_DATABASE_URL": broker.database_url, "AIBROKER_LOG_LEVEL": "warning"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"batch_discount_bps": 2500' in done.stdout
    with broker.admin() as admin:
        assert admin.get("/api/admin/plans/professional").json()["batch_discount_bps"] == 2500

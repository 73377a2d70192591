"""openai-python's files + batches against a running broker: every endpoint kind on the mock
provider and on the fake OpenAI upstream, results read back through files.content."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from aibroker.billing.audit import verify
from aibroker.models import UsageRecord
from tests.batches.support import chat_line, embedding_line, read_jsonl, responses_line, run_to_end, upload
from tests.support.usage import usage_rows


def _assert_ledger_clean(broker) -> None:
    broker.flush()
    report = verify(broker.db)
    assert report.ok, report.as_dict()


def test_chat_batch_runs_to_completed_with_its_output_file(broker, org, client):
    lines = [chat_line(f"req-{i}", f"hello number {i}") for i in range(5)]
    source = upload(client, lines)
    assert source.purpose == "batch" and source.bytes > 0 and source.id.startswith("file-")
    batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h",
                                  metadata={"job": "nightly"})
    assert batch.status == "validating" and batch.metadata == {"job": "nightly"}
    done = run_to_end(broker.url, client, batch.id)
    assert done.status == "completed", done
    assert done.request_counts.total == 5 and done.request_counts.completed == 5 and done.request_counts.failed == 0
    assert done.in_progress_at and done.finalizing_at and done.completed_at and done.error_file_id is None
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens > 0
    output = read_jsonl(client, done.output_file_id)
    assert set(output) == {f"req-{i}" for i in range(5)}
    for row in output.values():
        assert row["error"] is None and row["response"]["status_code"] == 200
        body = row["response"]["body"]
        assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"]
        assert row["id"].startswith("batch_req_")
    assert client.files.retrieve(done.output_file_id).purpose == "batch_output"
    records = [r for r in usage_rows(broker, org["organization_id"]) if r.status == "success"]
    assert sorted(r.batch_custom_id for r in records) == sorted(output)
    assert {r.batch_id for r in records} == {batch.id} and all(r.billed_cost_micros > 0 for r in records)
    _assert_ledger_clean(broker)


def test_embeddings_and_responses_batches(broker, org, client):
    emb = upload(client, [embedding_line(f"e{i}", f"text {i}") for i in range(3)])
    resp = upload(client, [responses_line(f"r{i}", f"question {i}") for i in range(3)])
    b1 = client.batches.create(input_file_id=emb.id, endpoint="/v1/embeddings", completion_window="24h")
    b2 = client.batches.create(input_file_id=resp.id, endpoint="/v1/responses", completion_window="24h")
    d1, d2 = run_to_end(broker.url, client, b1.id), run_to_end(broker.url, client, b2.id)
    assert (d1.status, d2.status) == ("completed", "completed")
    embeddings = read_jsonl(client, d1.output_file_id)
    assert set(embeddings) == {"e0", "e1", "e2"}
    assert all(row["response"]["body"]["object"] == "list" and row["response"]["body"]["data"][0]["embedding"]
               for row in embeddings.values())
    responses = read_jsonl(client, d2.output_file_id)
    assert set(responses) == {"r0", "r1", "r2"}
    for row in responses.values():
        body = row["response"]["body"]
        assert body["object"] == "response" and body["status"] == "completed"
        assert body["output"][0]["content"][0]["type"] == "output_text" and body["usage"]["total_tokens"] > 0
    with broker.db.connect() as conn:
        endpoints = dict(conn.execute(select(UsageRecord.batch_id, func.min(UsageRecord.endpoint)).group_by(UsageRecord.batch_id)).all())
    assert endpoints == {b1.id: "embeddings", b2.id: "responses"}
    _assert_ledger_clean(broker)


def test_chat_batch_through_the_fake_openai_upstream(broker, org, client, upstream):
    lines = [chat_line(f"u{i}", f"upstream words {i}", model="openai/gpt-4o-mini") for i in range(4)]
    done = run_to_end(broker.url, client, client.batches.create(
        input_file_id=upload(client, lines).id, endpoint="/v1/chat/completions", completion_window="24h").id)
    assert done.status == "completed" and done.request_counts.completed == 4
    output = read_jsonl(client, done.output_file_id)
    for i in range(4):
        assert output[f"u{i}"]["response"]["body"]["choices"][0]["message"]["content"] == f"Echo: upstream words {i}"
    assert len([r for r in upstream.requests if r.path.endswith("/chat/completions")]) == 4
    _assert_ledger_clean(broker)


@pytest.mark.parametrize("endpoint,line", [
    ("/v1/embeddings", embedding_line("x", "vector me", model="openai/text-embedding-3-small")),
    ("/v1/responses", responses_line("x", "answer me", model="openai/gpt-4o-mini")),
])
def test_other_endpoints_through_the_fake_upstream(broker, org, client, upstream, endpoint, line):
    done = run_to_end(broker.url, client, client.batches.create(
        input_file_id=upload(client, [line]).id, endpoint=endpoint, completion_window="24h").id)
    assert done.status == "completed", done
    row = read_jsonl(client, done.output_file_id)["x"]
    assert row["response"]["status_code"] == 200
    _assert_ledger_clean(broker)

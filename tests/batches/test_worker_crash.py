"""A worker killed with SIGKILL mid-batch: another worker takes the job when its lease
expires and finishes the batch; every line is billed exactly once and the ledger is clean."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import openai
from sqlalchemy import func, select

from aibroker.billing.audit import verify
from aibroker.models import BatchLine, LedgerEntry, UsageRecord
from tests.batches.support import chat_line, read_jsonl, upload
from tests.support.fleet import AIBROKER, ROOT

LINES = 60


def _worker(log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AIBROKER_JOB_LEASE_SECONDS": "2", "AIBROKER_JOB_POLL_SECONDS": "0.2",
           "AIBROKER_MOCK_LATENCY_MS": "200", "AIBROKER_BATCH_CONCURRENCY": "4", "AIBROKER_LOG_LEVEL": "warning"}
    with log.open("ab") as out:
        return subprocess.Popen([AIBROKER, "worker", "-c", "1"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def _done_lines(broker, batch_id: str) -> int:
    with broker.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(BatchLine).where(BatchLine.batch_id == batch_id)).scalar_one()


def _wait(condition, what: str, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.02)  # polling a condition, with a deadline


def test_a_killed_worker_is_resumed_without_billing_a_line_twice(broker, tmp_path):
    org = broker.create_org("Crashy", credit="10", plan="unlimited")  # no rate limit to wait for
    client = openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)
    batch = client.batches.create(input_file_id=upload(client, [chat_line(f"k{i}", f"line number {i}") for i in range(LINES)]).id,
                                  endpoint="/v1/chat/completions", completion_window="24h")
    first_log, second_log = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    first = _worker(first_log)
    try:
        _wait(lambda: _done_lines(broker, batch.id) >= 8, "the first lines", 90, first, first_log)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
    interrupted = _done_lines(broker, batch.id)
    assert interrupted < LINES, "the batch finished before the worker was killed"
    assert client.batches.retrieve(batch.id).status == "in_progress"
    second = _worker(second_log)
    try:
        _wait(lambda: client.batches.retrieve(batch.id).status == "completed", "the batch to complete", 120, second, second_log)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(second.pid, signal.SIGKILL)
            second.wait(timeout=10)
    done = client.batches.retrieve(batch.id)
    errors = read_jsonl(client, done.error_file_id)
    assert not errors, list(errors.values())[:2]
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (LINES, LINES, 0)
    assert set(read_jsonl(client, done.output_file_id)) == {f"k{i}" for i in range(LINES)}
    broker.flush()
    with broker.db.connect() as conn:
        per_line = dict(conn.execute(
            select(UsageRecord.batch_custom_id, func.count()).where(UsageRecord.batch_id == batch.id, UsageRecord.status == "success")
            .group_by(UsageRecord.batch_custom_id)).all())
        billed = conn.execute(select(func.sum(UsageRecord.billed_cost_micros)).where(UsageRecord.batch_id == batch.id)).scalar_one()
        debited = conn.execute(select(func.sum(LedgerEntry.amount_micros)).where(
            LedgerEntry.organization_id == org["organization_id"], LedgerEntry.kind == "debit")).scalar_one()
    assert per_line == {f"k{i}": 1 for i in range(LINES)}  # exactly one billed record per custom_id
    assert billed > 0 and -debited == billed
    report = verify(broker.db)
    assert report.ok, report.as_dict()

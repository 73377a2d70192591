"""A real `aibroker worker` process SIGKILLed mid-job: another worker process resumes the
recording from the first segment not done; every segment is paid once, the dead worker's
hold goes back to the wallet, and verify-ledger stays clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aibroker.billing.audit import verify
from aibroker.models import LedgerEntry, RecordingSegment, UsageRecord, Wallet
from tests.fakes._server import Fault
from tests.recordings.conftest import upload_chunked
from tests.recordings.samples import encode
from tests.support.fleet import ROOT

AIBROKER = str(Path(sys.executable).parent / "aibroker")
SEGMENTS = 6
PER_SECOND_MICROS = 130  # whisper-1: $0.006 a minute = 100 micros a second, plus 30%
PER_SECOND_MICROS_MOCK = 130  # mock-transcribe: priced as whisper-1


@pytest.fixture
def broker_env(broker_env):
    # Short wallet leases: the dead worker's hold is swept within seconds.
    return {**broker_env, "AIBROKER_LEASE_TTL_SECONDS": "3", "AIBROKER_SWEEP_INTERVAL_SECONDS": "1"}


def _worker(log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([AIBROKER, "worker", "--concurrency", "1", "--type", "recordings.process"],
                                env=dict(os.environ), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def _wait(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)  # polling a condition with a deadline


def test_a_killed_worker_is_resumed_and_no_segment_is_paid_twice(broker, org, http, upstream, monkeypatch, tmp_path):
    # Whisper through the fake OpenAI, slowed so the kill lands mid-job; one-second segments.
    for name in ("AIBROKER_RECORDINGS_TRANSCRIPTION_MODEL", "AIBROKER_RECORDINGS_ANALYSIS_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIBROKER_RECORDINGS_SEGMENT_SECONDS", "1")
    monkeypatch.setenv("AIBROKER_JOB_LEASE_SECONDS", "2")
    monkeypatch.setenv("AIBROKER_LOG_LEVEL", "warning")
    upstream.default_fault = Fault(latency=0.3)
    rec = upload_chunked(http, encode("wav", SEGMENTS), 60_000)

    def done_segments() -> int:
        return len(broker.rows(RecordingSegment, RecordingSegment.recording_id == rec["id"], RecordingSegment.status == "done"))

    first = _worker(tmp_path / "worker-1.log")
    try:
        _wait(lambda: done_segments() >= 2, "the first worker transcribed nothing:\n" + (tmp_path / "worker-1.log").read_text()[-2000:])
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    killed_at = done_segments()
    assert killed_at < SEGMENTS
    second = _worker(tmp_path / "worker-2.log")
    try:
        _wait(lambda: http.get(f"/api/status/{rec['id']}").json()["status"] == "analyzed",
              "the second worker did not finish:\n" + (tmp_path / "worker-2.log").read_text()[-2000:])
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)

    org_id = org["organization_id"]
    broker.flush()
    segments = broker.rows(RecordingSegment, RecordingSegment.recording_id == rec["id"])
    assert [s.status for s in sorted(segments, key=lambda s: s.index)] == ["done"] * SEGMENTS
    transcribed = [r for r in broker.rows(UsageRecord, UsageRecord.organization_id == org_id)
                   if r.feature == "recording_transcription" and r.status == "success"]
    refunds = [e for e in broker.rows(LedgerEntry, LedgerEntry.organization_id == org_id) if e.kind == "refund"]
    # Each segment paid once: a call billed by the dead worker whose result was lost is refunded.
    net = sum(r.billed_cost_micros for r in transcribed) - sum(e.amount_micros for e in refunds)
    assert net == SEGMENTS * PER_SECOND_MICROS
    assert len(transcribed) - len(refunds) == SEGMENTS
    assert sum(s.refunded_micros for s in segments) == sum(e.amount_micros for e in refunds)
    calls = [r for r in upstream.requests if r.path.endswith("/audio/transcriptions")]
    assert len(calls) <= SEGMENTS + 1  # at most the one the kill interrupted is asked again
    analysis = http.get(f"/api/recordings/{rec['id']}/analysis").json()
    assert len(analysis["segments"]) == SEGMENTS and analysis["cost_micros"] == http.get(f"/api/recordings/{rec['id']}").json()["cost_micros"]

    def held() -> int:
        broker.flush()
        return broker.rows(Wallet, Wallet.organization_id == org_id)[0].held_micros

    _wait(lambda: held() == 0, "the dead worker's hold was never swept")  # its lease expired
    assert verify(broker.db).ok


def test_a_segment_billed_but_lost_is_refunded_when_transcribed_again(broker, org, http, audio_files, monkeypatch):
    """The worst moment to die: after the segment's debit, before its result was written."""
    from aibroker.recordings import tasks

    real_finish = tasks._finish
    lost = []

    async def die_once(job, rec, index, done, total):  # type: ignore[no-untyped-def]
        if index == 1 and not lost:
            lost.append(done)
            raise RuntimeError("the worker died here")  # the debit is committed, the result is not
        await real_finish(job, rec, index, done, total)

    monkeypatch.setattr(tasks, "_finish", die_once)
    rec = upload_chunked(http, audio_files["wav"], 60_000)
    with broker.admin() as admin:
        first = admin.post("/api/jobs/process", json={"max_jobs": 1}).json()
        assert first["retried"] == 1, first
        with broker.db.begin() as conn:  # due now rather than after the backoff
            conn.exec_driver_sql("UPDATE jobs SET scheduled_for = created_at WHERE type = 'recordings.process'")
        assert admin.post("/api/jobs/process", json={"max_jobs": 1}).json()["completed"] == 1
    org_id = org["organization_id"]
    broker.flush()
    transcribed = [r for r in broker.rows(UsageRecord, UsageRecord.organization_id == org_id)
                   if r.feature == "recording_transcription" and r.status == "success"]
    refunds = [e for e in broker.rows(LedgerEntry, LedgerEntry.organization_id == org_id) if e.kind == "refund"]
    assert len(transcribed) == 4 and len(refunds) == 1  # segment 1 was asked twice, paid once
    assert sum(r.billed_cost_micros for r in transcribed) - refunds[0].amount_micros == (2 + 2 + 1) * PER_SECOND_MICROS_MOCK
    [seg] = broker.rows(RecordingSegment, RecordingSegment.recording_id == rec["id"], RecordingSegment.index == 1)
    assert seg.status == "done" and seg.refunded_micros == refunds[0].amount_micros
    analysis = http.get(f"/api/recordings/{rec['id']}/analysis").json()
    billed = sum(r.billed_cost_micros for r in broker.rows(UsageRecord, UsageRecord.organization_id == org_id))
    assert analysis["cost_micros"] == billed - refunds[0].amount_micros
    assert verify(broker.db).ok

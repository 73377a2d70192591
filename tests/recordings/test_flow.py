"""The whole flow through the job queue with the mock provider: chunked upload of every
accepted format, finalize, process, analysis; billed per segment, verify-ledger clean."""

from __future__ import annotations

import hashlib

import pytest

from aibroker.billing.audit import verify
from tests.recordings.conftest import process_jobs, upload_chunked
from tests.support.usage import usage_rows


def test_chunked_upload_processed_with_the_mock(broker, org, http, audio_files):
    data = audio_files["mp3"]
    rec = upload_chunked(http, data, 16 * 1024, title="Sales call", sha256=hashlib.sha256(data).hexdigest())
    assert rec["status"] == "uploaded" and rec["size_bytes"] == len(data) and rec["media_type"] == "audio/mpeg"
    assert rec["sha256"] == hashlib.sha256(data).hexdigest()
    outcome = process_jobs(broker)
    assert outcome["completed"] == 1, outcome
    status = http.get(f"/api/status/{rec['id']}").json()
    assert status == {"id": rec["id"], "status": "analyzed", "progress": 100, "failure": None}
    analysis = http.get(f"/api/recordings/{rec['id']}/analysis").json()
    # 5 s in 2-second segments: 2 + 2 + 1 seconds, the mock's fixed text per second.
    assert [s["text"] for s in analysis["segments"]] == ["Mock second 1. Mock second 2.", "Mock second 1. Mock second 2.", "Mock second 1."]
    assert [(s["start"], s["end"]) for s in analysis["segments"]] == [(0, 2), (2, 4), (4, 5)]
    assert analysis["transcript"].count("Mock second") == 5
    assert analysis["summary"].startswith("Mock summary") and analysis["sentiment"] == "neutral"
    rows = usage_rows(broker, org["organization_id"])
    transcriptions = [r for r in rows if r.feature == "recording_transcription"]
    analyses = [r for r in rows if r.feature == "recording_analysis"]
    assert [r.input_tokens for r in transcriptions] == [2, 2, 1] and all(r.status == "success" for r in transcriptions)
    assert len(analyses) == 1 and analyses[0].status == "success"
    total = sum(r.billed_cost_micros for r in transcriptions + analyses)
    assert analysis["cost_micros"] == total > 0
    assert set(analysis["request_ids"]) == {r.request_id for r in transcriptions + analyses}
    assert verify(broker.db).ok


@pytest.mark.parametrize("name", ["wav", "m4a", "ogg", "webm"])
def test_every_recorded_format_is_accepted(broker, http, audio_files, name):
    rec = upload_chunked(http, audio_files[name], 20 * 1024)
    assert rec["status"] == "uploaded" and rec["codec"]
    process_jobs(broker)
    got = http.get(f"/api/recordings/{rec['id']}").json()
    assert got["status"] == "analyzed" and 4.9 <= got["duration_seconds"] <= 5.1


def test_audio_already_held_becomes_a_recording(broker, org, audio_files):
    """What a voice session uses to save its audio: the upload path, from bytes in hand."""
    import asyncio

    from aibroker.recordings.service import RecordingService
    from aibroker.storage import blob_store_for

    services = broker.services

    async def save() -> str:
        principal = await services.auth.principal_for_org(org["organization_id"], admin=False)
        async with services.db.sessions() as session:
            service = RecordingService(session, blob_store_for(services.settings.storage), max_chunk_bytes=1024)
            row = await service.store_recording(principal, audio_files["ogg"], title="Voice session", content_type="audio/ogg")
            await session.commit()
            return row.id

    rec_id = asyncio.run_coroutine_threadsafe(save(), services.writer.loop).result(timeout=30)
    process_jobs(broker)
    with broker.client(org["api_key"]) as http:
        got = http.get(f"/api/recordings/{rec_id}").json()
    assert (got["title"], got["status"], got["media_type"]) == ("Voice session", "analyzed", "audio/ogg")

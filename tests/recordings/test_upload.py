"""Uploads as an attacker tries them: oversize chunks, bad indexes, other tenants' ids,
replays, missing chunks, bytes that are not audio, a storage outage mid-upload; and the
download with HTTP Range."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aibroker.models import Job, Recording
from tests.recordings.conftest import process_jobs, upload_chunked

CHUNK = 16 * 1024


def _create(http, **body):
    answer = http.post("/api/recordings", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _chunk(http, rec_id, index, data, **headers):
    return http.post(f"/api/chunks/{rec_id}", content=data, headers={"x-chunk-index": str(index), **headers})


def _used(broker, org_id):
    return broker.scalar("SELECT used_bytes FROM storage_usage WHERE organization_id = :o", o=org_id)


def test_create_says_how_to_upload(http):
    rec = _create(http, title="Call", total_chunks=3)
    assert rec["status"] == "uploading" and rec["progress"] == 0
    assert rec["upload"] == {"chunk_url": f"/api/chunks/{rec['id']}", "finalize_url": f"/api/finalize/{rec['id']}",
                             "max_chunk_bytes": 64 * 1024}


def test_chunk_limits_and_indexes(broker, org, http):
    rec = _create(http, total_chunks=2)
    too_big = _chunk(http, rec["id"], 0, b"x" * (64 * 1024 + 1))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "body_too_large"

    def streamed():
        for _ in range(70):
            yield b"y" * 1024  # chunked transfer: no Content-Length to refuse up front

    cut = http.post(f"/api/chunks/{rec['id']}", content=streamed(), headers={"x-chunk-index": "0"})
    assert cut.status_code == 413
    for index in ("2", "-1", "abc", ""):
        bad = _chunk(http, rec["id"], index, b"data")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "chunk_index_out_of_range", index
    mismatch = _chunk(http, rec["id"], 0, b"data", **{"x-chunk-sha256": "0" * 64})
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == "chunk_checksum_mismatch"
    assert _chunk(http, rec["id"], 1, b"").json()["error"]["code"] == "empty_chunk"
    assert (_used(broker, org["organization_id"]) or 0) == 0  # nothing refused was kept or counted


def test_chunks_are_idempotent_in_any_order_and_finalize_names_the_missing(broker, org, http, audio_files):
    data = audio_files["wav"]
    pieces = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
    rec = _create(http, total_chunks=len(pieces), total_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    for index in reversed(range(2, len(pieces))):
        assert _chunk(http, rec["id"], index, pieces[index]).status_code == 200
    again = _chunk(http, rec["id"], 3, pieces[3], **{"x-chunk-sha256": hashlib.sha256(pieces[3]).hexdigest()})
    assert again.status_code == 200 and again.json()["received_chunks"] == len(pieces) - 2
    assert _used(broker, org["organization_id"]) == sum(len(p) for p in pieces[2:])  # the replay counted once
    missing = http.post(f"/api/finalize/{rec['id']}")
    assert missing.status_code == 409
    assert missing.json()["error"]["code"] == "missing_chunks" and missing.json()["error"]["missing_chunks"] == [0, 1]
    assert _chunk(http, rec["id"], 0, b"wrong bytes").status_code == 200
    assert _chunk(http, rec["id"], 0, pieces[0]).status_code == 200  # replaced: the quota follows
    assert _chunk(http, rec["id"], 1, pieces[1]).status_code == 200
    assert _used(broker, org["organization_id"]) == len(data)
    first = http.post(f"/api/finalize/{rec['id']}")
    second = http.post(f"/api/finalize/{rec['id']}")
    assert first.status_code == second.status_code == 200 and first.json()["status"] == second.json()["status"] == "uploaded"
    assert first.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(broker.rows(Job, Job.type == "recordings.process")) == 1  # finalize twice: one job
    assert _chunk(http, rec["id"], 0, pieces[0]).status_code == 409  # assembled: no more chunks
    assert _used(broker, org["organization_id"]) == len(data)  # the assembled file replaced its chunks
    blobs = Path(broker.settings.storage.storage_dir) / org["organization_id"] / "recordings" / rec["id"]
    assert sorted(p.name for p in blobs.iterdir()) == ["audio"]


def test_size_and_checksum_are_checked(http, audio_files):
    data = audio_files["wav"]
    wrong_size = _create(http, total_bytes=len(data) + 1)
    assert _chunk(http, wrong_size["id"], 0, data[:60_000]).status_code == 200
    assert http.post(f"/api/finalize/{wrong_size['id']}").json()["error"]["code"] == "size_mismatch"
    wrong_sum = _create(http, sha256="a" * 64)
    assert _chunk(http, wrong_sum["id"], 0, data[:60_000]).status_code == 200
    assert http.post(f"/api/finalize/{wrong_sum['id']}").json()["error"]["code"] == "checksum_mismatch"


def test_bytes_that_are_not_audio_are_refused(broker, org, http):
    rec = _create(http)
    assert _chunk(http, rec["id"], 0, b"%PDF-1.4 this is a document, not a recording " * 50).status_code == 200
    refused = http.post(f"/api/finalize/{rec['id']}")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "unsupported_media"
    assert http.get(f"/api/recordings/{rec['id']}").json()["status"] == "uploading"  # fix the chunks, finalize again
    upload = http.post("/api/upload", files={"file": ("notes.txt", b"plain text " * 100, "text/plain")})
    assert upload.status_code == 400 and upload.json()["error"]["code"] == "unsupported_media"
    assert broker.rows(Job, Job.type == "recordings.process") == []


def test_direct_upload_and_ranged_download(broker, http, audio_files):
    data = audio_files["m4a"]
    made = http.post("/api/upload", files={"file": ("call.m4a", data, "audio/mp4")}, data={"title": "Direct"})
    assert made.status_code == 201, made.text
    rec = made.json()
    assert (rec["status"], rec["title"], rec["media_type"], rec["size_bytes"]) == ("uploaded", "Direct", "audio/mp4", len(data))
    whole = http.get(f"/api/recordings/{rec['id']}/audio")
    assert whole.status_code == 200 and whole.content == data and whole.headers["accept-ranges"] == "bytes"
    part = http.get(f"/api/recordings/{rec['id']}/audio", headers={"range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == data[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    tail = http.get(f"/api/recordings/{rec['id']}/audio", headers={"range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    outside = http.get(f"/api/recordings/{rec['id']}/audio", headers={"range": f"bytes={len(data)}-"})
    assert outside.status_code == 416 and outside.headers["content-range"] == f"bytes */{len(data)}"


def test_another_organizations_recording_is_404_everywhere(broker, http, audio_files):
    rec = upload_chunked(http, audio_files["wav"], 60_000)
    other = broker.create_org("Intruder", credit="1")
    with broker.client(other["api_key"]) as intruder:
        answers = [
            intruder.post(f"/api/chunks/{rec['id']}", content=b"x", headers={"x-chunk-index": "0"}),
            intruder.post(f"/api/finalize/{rec['id']}"),
            intruder.get(f"/api/recordings/{rec['id']}"),
            intruder.get(f"/api/recordings/{rec['id']}/audio"),
            intruder.get(f"/api/recordings/{rec['id']}/analysis"),
            intruder.get(f"/api/status/{rec['id']}"),
            intruder.post(f"/api/recordings/{rec['id']}/reprocess"),
            intruder.delete(f"/api/recordings/{rec['id']}"),
        ]
        listed = intruder.get("/api/recordings").json()
    assert [a.status_code for a in answers] == [404] * len(answers)
    assert listed["data"] == []
    assert http.get(f"/api/recordings/{rec['id']}").status_code == 200


def test_storage_down_keeps_nothing_and_the_upload_resumes(broker, org, http, audio_files):
    data = audio_files["wav"]
    root = Path(broker.settings.storage.storage_dir)
    rec = _create(http, total_bytes=len(data), total_chunks=3)
    first = data[:60_000]
    assert _chunk(http, rec["id"], 0, first).status_code == 200
    aside = root.with_name("blobs-aside")
    root.rename(aside)
    root.write_text("the disk is gone")  # a file where the directory was: every write fails
    try:
        down = _chunk(http, rec["id"], 1, data[60_000:120_000])
        assert down.status_code == 503 and down.json()["error"]["code"] == "storage_unavailable"
        assert down.headers["retry-after"] == "5"
        assert http.get(f"/api/recordings/{rec['id']}").json()["chunk_count"] == 1
        assert _used(broker, org["organization_id"]) == len(first)
    finally:
        root.unlink()
        aside.rename(root)
    # The disk is back: the client sends what is missing, and finalizes.
    missing = http.post(f"/api/finalize/{rec['id']}")
    assert missing.status_code == 409 and missing.json()["error"]["missing_chunks"] == [1, 2]
    for index, start in enumerate(range(0, len(data), 60_000)):
        if index:
            assert _chunk(http, rec["id"], index, data[start:start + 60_000]).status_code == 200
    done = http.post(f"/api/finalize/{rec['id']}")
    assert done.status_code == 200 and done.json()["status"] == "uploaded", done.text
    assert _used(broker, org["organization_id"]) == len(data)


def test_list_filters_and_cursor(broker, org, http, audio_files):
    made = [upload_chunked(http, audio_files["wav"], 60_000, title=f"Call {i}") for i in range(3)]
    outcome = process_jobs(broker)
    assert outcome["completed"] == 3, outcome
    assert [r.status for r in broker.rows(Recording)] == ["analyzed"] * 3, [(r.status, r.failure_code, r.failure_message) for r in broker.rows(Recording)]
    page = http.get("/api/recordings", params={"limit": 2}).json()
    assert [r["id"] for r in page["data"]] == [made[2]["id"], made[1]["id"]] and page["next_cursor"] == made[1]["id"]
    rest = http.get("/api/recordings", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [r["id"] for r in rest["data"]] == [made[0]["id"]] and rest["next_cursor"] is None
    assert [r["id"] for r in http.get("/api/recordings", params={"q": "call 1"}).json()["data"]] == [made[1]["id"]]
    assert len(http.get("/api/recordings", params={"q": "mock second 2"}).json()["data"]) == 3  # in the transcript
    assert len(http.get("/api/recordings", params={"status": "analyzed"}).json()["data"]) == 3
    assert http.get("/api/recordings", params={"status": "uploading"}).json()["data"] == []
    assert http.get("/api/recordings", params={"from": "2999-01-01T00:00:00Z"}).json()["data"] == []
    assert http.get("/api/recordings", params={"to": "2000-01-01T00:00:00"}).json()["data"] == []  # no zone: UTC
    assert len(http.get("/api/recordings", params={"from": "2000-01-01T00:00:00"}).json()["data"]) == 3
    assert http.get("/api/recordings", params={"q": "100%_"}).json()["data"] == []
    assert http.get("/api/recordings", params={"status": "bogus"}).status_code == 422
    assert broker.scalar("SELECT count(*) FROM recordings") == 3 == len(broker.rows(Recording))


def test_a_client_that_leaves_mid_chunk_leaves_nothing(broker, org, http):
    import socket
    import time

    rec = _create(http)
    host, port = broker.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (f"POST /api/chunks/{rec['id']} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {org['api_key']}\r\n"
                f"x-chunk-index: 0\r\nContent-Type: application/octet-stream\r\nContent-Length: 60000\r\n\r\n")
        sock.sendall(head.encode() + b"z" * 20_000)  # a third of the chunk, then gone
    root = Path(broker.settings.storage.storage_dir)
    deadline = time.monotonic() + 10
    while any(root.rglob("*.part")) or not root.exists():
        assert time.monotonic() < deadline, list(root.rglob("*"))
        time.sleep(0.05)  # polling: the server notices the disconnect on its own schedule
    assert [p for p in root.rglob("*") if p.is_file()] == []
    assert http.get(f"/api/recordings/{rec['id']}").json()["chunk_count"] == 0
    assert (_used(broker, org["organization_id"]) or 0) == 0

"""Recordings fixtures: real audio encoded once per session, and a broker whose blob store
is a fresh directory, with 2-second transcription segments (a few seconds of audio make
several billed segments)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aibroker.storage import reset_blob_store
from tests.recordings.samples import FORMATS, encode

SECONDS = 5


@pytest.fixture(scope="session")
def audio_files() -> dict[str, bytes]:
    """name -> a 5-second tone in that format (wav, mp3, m4a, ogg, webm)."""
    return {name: encode(name, SECONDS) for name in FORMATS}


@pytest.fixture
def broker_env(broker_env: dict[str, str], tmp_path: Any) -> Iterator[dict[str, str]]:
    reset_blob_store()
    yield {**broker_env, "AIBROKER_STORAGE_DIR": str(tmp_path / "blobs"), "AIBROKER_RECORDINGS_SEGMENT_SECONDS": "2",
           "AIBROKER_MAX_CHUNK_BYTES": str(64 * 1024), "AIBROKER_RECORDINGS_TRANSCRIPTION_MODEL": "mock/mock-transcribe",
           "AIBROKER_RECORDINGS_ANALYSIS_MODEL": "mock/mock-chat"}
    reset_blob_store()


@pytest.fixture
def org(broker) -> dict[str, Any]:
    # PROFESSIONAL: FREE's 10 requests an hour would stop the third recording (4 calls each).
    return broker.create_org("Acme", credit="10", plan="professional")


@pytest.fixture
def http(broker, org) -> Iterator[httpx.Client]:
    with broker.client(org["api_key"]) as client:
        yield client


def process_jobs(broker, max_jobs: int = 20) -> dict[str, Any]:
    with broker.admin() as admin:
        answer = admin.post("/api/jobs/process", json={"max_jobs": max_jobs, "concurrency": 1})
    assert answer.status_code == 200, answer.text
    return answer.json()


def upload_chunked(http: httpx.Client, data: bytes, chunk: int, **create: Any) -> dict[str, Any]:
    created = http.post("/api/recordings", json={"total_bytes": len(data), **create})
    assert created.status_code == 201, created.text
    rec = created.json()
    for index, start in enumerate(range(0, len(data), chunk)):
        answer = http.post(f"/api/chunks/{rec['id']}", content=data[start:start + chunk], headers={"x-chunk-index": str(index)})
        assert answer.status_code == 200, answer.text
    done = http.post(f"/api/finalize/{rec['id']}")
    assert done.status_code == 200, done.text
    return done.json()

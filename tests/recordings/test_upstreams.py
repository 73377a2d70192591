"""The worker against the fake OpenAI (whisper-1 + chat) and, when the routing matrix routes
recording_transcription to a Gemini model, the fake Gemini: the audio itself goes up
through the Files API (resumable upload), is named by fileData, and is deleted after."""

from __future__ import annotations

import pytest

from aibroker.billing.audit import verify
from tests.fakes.gemini_upstream import FakeGemini
from tests.recordings.conftest import process_jobs, upload_chunked
from tests.routing.conftest import load_yaml
from tests.support.usage import usage_rows

GEMINI_KEY = "gemini-recordings-key"
ROUTING = """
plans: [professional]
providers:
  - {slug: gemini, display_name: Gemini, default_model: gemini-2.5-flash}
  - {slug: mock, display_name: Mock, default_model: mock-chat}
features:
  - {slug: recording_transcription, name: Transcription, category: analysis}
  - {slug: recording_analysis, name: Analysis, category: analysis}
matrix:
  - {plan: professional, feature: recording_transcription, provider: gemini, model: gemini-2.5-flash}
  - {plan: professional, feature: recording_analysis, provider: mock, model: mock-chat}
"""


@pytest.fixture(scope="module")
def gemini():
    with FakeGemini(api_key=GEMINI_KEY) as fake:
        yield fake


@pytest.fixture
def broker_env(broker_env, gemini):
    gemini.reset()
    env = {k: v for k, v in broker_env.items() if not k.startswith("AIBROKER_RECORDINGS_") or k.endswith("SEGMENT_SECONDS")}
    # Every 2-second segment (64 kB of WAV) is "long audio" here: it goes through the Files API.
    return {**env, "GEMINI_API_KEY": GEMINI_KEY, "GEMINI_BASE_URL": gemini.base_url, "AIBROKER_GEMINI_INLINE_AUDIO_BYTES": "1000"}


def test_fake_openai_transcribes_each_segment_and_analyses(broker, org, http, audio_files, upstream):
    rec = upload_chunked(http, audio_files["ogg"], 30 * 1024)
    assert process_jobs(broker)["completed"] == 1
    analysis = http.get(f"/api/recordings/{rec['id']}/analysis").json()
    assert [s["text"] for s in analysis["segments"]] == [f"Fake transcript of segment-0000{i}.wav." for i in range(3)]
    uploads = [r for r in upstream.requests if r.path.endswith("/audio/transcriptions")]
    chats = [r for r in upstream.requests if r.path.endswith("/chat/completions")]
    assert len(uploads) == 3 and len(chats) == 1
    assert chats[0].body["response_format"]["json_schema"]["name"] == "recording_analysis"
    assert "Fake transcript of segment-00002.wav." in chats[0].body["messages"][-1]["content"]
    assert analysis["models"]["transcription"] == ["openai/whisper-1"]
    rows = usage_rows(broker, org["organization_id"])
    assert sum(r.billed_cost_micros for r in rows) == analysis["cost_micros"] > 0
    assert verify(broker.db).ok


def test_gemini_routed_transcription_sends_the_audio_through_the_files_api(broker, org, http, audio_files, gemini, tmp_path):
    load_yaml(broker, tmp_path, ROUTING)
    rec = upload_chunked(http, audio_files["webm"], 30 * 1024)
    assert process_jobs(broker)["completed"] == 1, http.get(f"/api/recordings/{rec['id']}").json()
    analysis = http.get(f"/api/recordings/{rec['id']}/analysis").json()
    assert analysis["models"] == {"transcription": ["gemini/gemini-2.5-flash"], "analysis": "mock/mock-chat"}
    starts = [r for r in gemini.requests if r.path == "/upload/v1beta/files" and r.headers.get("x-goog-upload-command") == "start"]
    generates = [r for r in gemini.requests if r.path.endswith(":generateContent")]
    assert len(starts) == 3 and len(generates) == 3
    for request in generates:
        parts = request.body["contents"][0]["parts"]
        assert "inlineData" not in str(parts) and parts[1]["fileData"]["mimeType"] == "audio/wav"
    assert len(gemini.files.deleted) == 3 and gemini.files.files == {}
    assert all(s["text"].startswith("Echo: Transcribe this audio exactly.") for s in analysis["segments"])
    transcriptions = [r for r in usage_rows(broker, org["organization_id"]) if r.feature == "recording_transcription"]
    assert [(r.model, r.input_tokens, r.status) for r in transcriptions] == [("gemini/gemini-2.5-flash", s, "success") for s in (2, 2, 1)]
    assert verify(broker.db).ok

"""POST /v1/audio/speech with the openai SDK: mock-tts answers a real WAV whose length follows
the text, OpenAI's TTS models pass through to the fake; billed per character, exactly,
held before the call; the ledger stays clean."""

from __future__ import annotations

import io
import os
import subprocess
import wave
from pathlib import Path

import httpx
import pytest

from aibroker.models import LedgerEntry
from aibroker.providers.mock_media import SAMPLE_RATE, SECONDS_PER_CHARACTER
from tests.fakes.openai_upstream import fake_speech
from tests.support.usage import usage_rows

ROOT = Path(__file__).resolve().parents[2]


def _billed(chars: int, usd_per_m: int) -> int:
    """usd_per_m micros per character, plus the 30% default margin, rounded up once."""
    return -(-chars * usd_per_m * 13_000 // 10_000)


def test_mock_tts_answers_a_wav_that_follows_the_text(broker, org, client):
    short, long = "Hello there.", "Hello there, this sentence is quite a lot longer than the first one."
    raw = client.audio.speech.with_raw_response.create(model="mock-tts", voice="alloy", input=short, response_format="wav")
    assert raw.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(raw.content)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, SAMPLE_RATE)
        short_frames = reader.getnframes()
    assert short_frames == round(len(short) * SECONDS_PER_CHARACTER * SAMPLE_RATE)
    default = client.audio.speech.create(model="mock/mock-tts", voice="nova", input=long, speed=2.0)  # wav by default
    with wave.open(io.BytesIO(default.read())) as reader:
        assert reader.getnframes() == round(len(long) * SECONDS_PER_CHARACTER / 2.0 * SAMPLE_RATE) > short_frames / 2
    pcm = client.audio.speech.create(model="mock-tts", voice="alloy", input=short, response_format="pcm")
    assert len(pcm.read()) == short_frames * 2
    rows = usage_rows(broker, org["organization_id"])
    assert [(r.endpoint, r.model, r.input_tokens) for r in rows] == [
        ("speech", "mock/mock-tts", len(short)), ("speech", "mock/mock-tts", len(long)), ("speech", "mock/mock-tts", len(short))]
    assert [r.billed_cost_micros for r in rows] == [_billed(len(short), 15), _billed(len(long), 15), _billed(len(short), 15)]
    assert raw.headers["x-aibroker-cost-micros"] == str(rows[0].billed_cost_micros)
    for row in rows:
        [debit] = broker.rows(LedgerEntry, LedgerEntry.usage_record_id == row.id)
        assert debit.amount_micros == -row.billed_cost_micros


def test_mock_tts_refuses_formats_it_cannot_speak(broker, org):
    response = httpx.post(broker.url + "/v1/audio/speech", headers={"authorization": f"Bearer {org['api_key']}"},
                          json={"model": "mock-tts", "voice": "alloy", "input": "hi", "response_format": "mp3"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "response_format" and "wav" in error["message"] and "pcm" in error["message"]
    assert usage_rows(broker, org["organization_id"]) == []


@pytest.mark.parametrize("model, price", [("tts-1", 15), ("openai/tts-1-hd", 30), ("gpt-4o-mini-tts", 17)])
def test_openai_tts_passes_through_billed_per_character(broker, org, client, upstream, model, price):
    text = "Speak these words aloud."
    raw = client.audio.speech.with_raw_response.create(model=model, voice="coral", input=text)
    assert raw.headers["content-type"] == "audio/mpeg" and raw.content == fake_speech(text)
    [sent] = [r.body for r in upstream.requests if r.path == "/v1/audio/speech"]
    assert sent == {"model": model.split("/")[-1], "voice": "coral", "input": text}
    [row] = usage_rows(broker, org["organization_id"])
    assert (row.input_tokens, row.provider_cost_micros, row.billed_cost_micros) == (len(text), len(text) * price, _billed(len(text), price))


@pytest.mark.parametrize("body", [
    {"model": "mock-tts", "voice": "alloy", "input": "x" * 4097}, {"model": "mock-tts", "voice": "alloy", "input": ""},
    {"model": "mock-tts", "voice": "alloy", "input": "hi", "speed": 5}, {"model": "mock-tts", "input": "hi"},
    {"model": "mock-tts", "voice": "alloy", "input": "hi", "response_format": "ogg"},
    {"model": "mock-chat", "voice": "alloy", "input": "hi"},
])
def test_bad_bodies_are_400_unbilled(broker, org, body):
    response = httpx.post(broker.url + "/v1/audio/speech", json=body, headers={"authorization": f"Bearer {org['api_key']}"})
    assert response.status_code == 400, response.text
    assert all(r.billed_cost_micros == 0 for r in usage_rows(broker, org["organization_id"]))


def test_ledger_is_clean_after_speech(broker, org, client):
    for text in ("one", "two words", "three little words"):
        client.audio.speech.create(model="mock-tts", voice="alloy", input=text)
    broker.flush()
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "aibroker"), "verify-ledger"], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "AIBROKER_DATABASE_URL": broker.database_url, "AIBROKER_LOG_LEVEL": "warning"})
    assert done.returncode == 0, done.stdout + done.stderr

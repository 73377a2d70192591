"""The official openai SDK against /v1/images/generations and /v1/audio/transcriptions:
mock models and the fake OpenAI upstream, per-image and per-minute prices, holds, errors."""

from __future__ import annotations

import base64
import io
import wave

import openai
import pytest

from aibroker.models import Wallet
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FAKE_PNG, transcript_text
from tests.support.usage import usage_rows

MAX_AUDIO = 200_000
GEMINI_KEY = "gemini-media-key"
GEMINI_AUDIO_TOKENS_PER_SECOND = 32


class FakeGeminiMedia(FakeGemini):
    """The fake Gemini, plus what image models and audio understanding answer on the wire:
    inlineData image parts for responseModalities ["IMAGE"], and AUDIO prompt token details."""

    def _response(self, model, body):
        parts = [p for c in body.get("contents") or [] for p in c.get("parts") or []]
        if "IMAGE" in (body.get("generationConfig") or {}).get("responseModalities", []):
            image = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(FAKE_PNG).decode()}}
            return {"candidates": [{"content": {"role": "model", "parts": [image]}, "finishReason": "STOP", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1290, "totalTokenCount": 1295}}
        response = super()._response(model, body)
        audio = [p["inlineData"] for p in parts if str(p.get("inlineData", {}).get("mimeType", "")).startswith("audio/")]
        if audio:
            seconds = wave_seconds(base64.b64decode(audio[0]["data"]))
            tokens = round(seconds * GEMINI_AUDIO_TOKENS_PER_SECOND)
            response["usageMetadata"]["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": 10}, {"modality": "AUDIO", "tokenCount": tokens}]
        return response


def wave_seconds(content: bytes) -> float:
    with wave.open(io.BytesIO(content)) as reader:
        return reader.getnframes() / reader.getframerate()


@pytest.fixture(scope="module")
def gemini_media():
    with FakeGeminiMedia(api_key=GEMINI_KEY) as fake:
        yield fake


@pytest.fixture
def broker_env(broker_env, gemini_media):
    gemini_media.reset()
    return {**broker_env, "AIBROKER_MAX_AUDIO_BYTES": str(MAX_AUDIO), "GEMINI_API_KEY": GEMINI_KEY, "GEMINI_BASE_URL": gemini_media.base_url}


def _wallet(broker, org_id):
    return broker.rows(Wallet, Wallet.organization_id == org_id)[0]


def _billed(micros: int, margin_bps: int = 3000) -> int:
    return -(-micros * (10_000 + margin_bps) // 10_000)


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


# -- images -------------------------------------------------------------------------------


def test_mock_images_are_pngs_billed_per_image(broker, org, client):
    raw = client.images.with_raw_response.generate(model="mock-image", prompt="a red cat", n=2)
    images = raw.parse()
    assert len(images.data) == 2
    png = base64.b64decode(images.data[0].b64_json)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and images.data[0].b64_json == images.data[1].b64_json
    # mock-image: $0.01 per image; 2 images x 1.30
    assert raw.headers["x-aibroker-cost-micros"] == str(_billed(2 * 10_000)) == "26000"
    assert raw.headers["x-aibroker-balance-micros"] == str(10_000_000 - 26_000)
    [row] = usage_rows(broker, org["organization_id"])
    assert (row.endpoint, row.model, row.status, row.output_tokens) == ("images", "mock/mock-image", "success", 2)
    assert (row.provider_cost_micros, row.billed_cost_micros) == (20_000, 26_000)
    wallet = _wallet(broker, org["organization_id"])
    assert (wallet.balance_micros, wallet.held_micros) == (10_000_000 - 26_000, 0)


def test_mock_image_quality_price_and_url_format(broker, org, client):
    images = client.images.generate(model="mock/mock-image", prompt="x", quality="hd", response_format="url")
    assert images.data[0].url.startswith("data:image/png;base64,")
    [row] = usage_rows(broker, org["organization_id"])
    assert row.billed_cost_micros == _billed(20_000)  # per_image_by: hd -> $0.02


def test_openai_gpt_image_priced_by_quality_and_size(broker, org, client, upstream):
    client.images.generate(model="openai/gpt-image-1", prompt="a lighthouse", quality="high", size="1024x1536")
    sent = upstream.requests[-1]
    assert sent.path == "/v1/images/generations"
    assert sent.body == {"model": "gpt-image-1", "prompt": "a lighthouse", "quality": "high", "size": "1024x1536"}
    # quality "auto": the hold covers the dearest price; the debit uses what the provider chose (medium 1024)
    client.images.generate(model="gpt-image-1", prompt="a boat", n=2)
    rows = usage_rows(broker, org["organization_id"])
    assert [r.billed_cost_micros for r in rows] == [_billed(250_000), _billed(2 * 42_000)]
    assert [r.output_tokens for r in rows] == [1, 2]
    wallet = _wallet(broker, org["organization_id"])
    assert wallet.held_micros == 0 and wallet.balance_micros == 10_000_000 - sum(r.billed_cost_micros for r in rows)


def test_dall_e_3_url_and_upstream_refusal_costs_nothing(broker, org, client, upstream):
    image = client.images.generate(model="dall-e-3", prompt="a tree", response_format="url", size="1792x1024")
    assert image.data[0].url.startswith("https://")
    with pytest.raises(openai.BadRequestError, match="n=1"):
        client.images.generate(model="dall-e-3", prompt="two trees", n=2)
    rows = usage_rows(broker, org["organization_id"])
    assert [(r.status, r.billed_cost_micros) for r in rows] == [("success", _billed(80_000)), ("error", 0), ("error", 0)]
    wallet = _wallet(broker, org["organization_id"])
    assert (wallet.balance_micros, wallet.held_micros) == (10_000_000 - _billed(80_000), 0)


def test_images_need_the_images_capability(broker, org, client, upstream):
    with pytest.raises(openai.BadRequestError, match="mock/mock-chat.*image generation.*'images'"):
        client.images.generate(model="mock-chat", prompt="x")
    with pytest.raises(openai.BadRequestError, match="openai/gpt-4o-mini.*'images'"):
        client.images.generate(model="openai/gpt-4o-mini", prompt="x")
    assert upstream.requests == [] and usage_rows(broker, org["organization_id"]) == []


def test_images_bad_input_and_insufficient_balance(broker, client):
    with pytest.raises(openai.BadRequestError, match="'n'"):
        client.images.generate(model="mock-image", prompt="x", n=11)
    with pytest.raises(openai.BadRequestError, match="prompt"):
        client.post("/images/generations", body={"model": "mock-image"}, cast_to=dict)
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="no-such-image-model", prompt="x")
    poor = broker.create_org("Poor", credit="0.02")
    poor_client = openai.OpenAI(base_url=broker.url + "/v1", api_key=poor["api_key"], max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        poor_client.images.generate(model="mock-image", prompt="x", n=2)
    assert info.value.status_code == 402
    error = info.value.body["error"] if "error" in info.value.body else info.value.body
    # quality not given: the hold covers the dearest mock price (hd, $0.02) for both images
    assert error["available_micros"] == 20_000 and error["required_micros"] == _billed(2 * 20_000)
    assert [(r.status, r.billed_cost_micros) for r in usage_rows(broker, poor["organization_id"])] == [("refused", 0)]


# -- audio --------------------------------------------------------------------------------


def test_mock_transcription_of_wav_billed_per_second(broker, org, client):
    raw = client.audio.transcriptions.with_raw_response.create(model="mock-transcribe", file=("memo.wav", wav_bytes(3)))
    transcript = raw.parse()
    assert transcript.text == "Mock second 1. Mock second 2. Mock second 3."
    # $0.006 per minute -> 3 s = 300 micros; x1.30 = 390
    assert raw.headers["x-aibroker-cost-micros"] == "390" and raw.headers["x-aibroker-audio-seconds"] == "3"
    [row] = usage_rows(broker, org["organization_id"])
    assert (row.endpoint, row.model, row.input_tokens) == ("audio", "mock/mock-transcribe", 3)
    assert (row.provider_cost_micros, row.billed_cost_micros) == (300, 390)
    assert _wallet(broker, org["organization_id"]).held_micros == 0


def test_transcription_response_formats(client):
    text = client.audio.transcriptions.create(model="mock-transcribe", file=("a.wav", wav_bytes(1.5)), response_format="text")
    assert isinstance(text, str) and text.startswith("Mock second 1.")
    verbose = client.audio.transcriptions.create(
        model="mock-transcribe", file=("a.wav", wav_bytes(1.5)), response_format="verbose_json", language="es"
    )
    assert verbose.duration == 1.5 and verbose.language == "es"


def test_openai_whisper_wav_and_compressed(broker, org, client, upstream):
    first = client.audio.transcriptions.create(
        model="openai/whisper-1", file=("call.wav", wav_bytes(2)), language="en", prompt="names: Ana", temperature=0.2
    )
    assert first.text == transcript_text("call.wav")
    sent = upstream.uploads[-1]
    assert {k: sent[k] for k in ("model", "language", "prompt", "temperature", "response_format", "filename")} == {
        "model": "whisper-1", "language": "en", "prompt": "names: Ana", "temperature": "0.2",
        "response_format": "json", "filename": "call.wav",
    }
    # An mp3 of 48,000 bytes: held as 48 s (8 kbps floor), billed at the 3 s the provider reports.
    client.audio.transcriptions.create(model="whisper-1", file=("talk.mp3", b"\xff\xfb" * 24_000))
    rows = usage_rows(broker, org["organization_id"])
    assert [r.input_tokens for r in rows] == [2, 3]
    assert [r.billed_cost_micros for r in rows] == [_billed(200), _billed(300)]
    wallet = _wallet(broker, org["organization_id"])
    assert wallet.held_micros == 0 and wallet.balance_micros == 10_000_000 - _billed(200) - _billed(300)


def test_upstream_refusal_passes_through_without_charge(broker, org, client):
    with pytest.raises(openai.BadRequestError, match="verbose_json"):
        client.audio.transcriptions.create(model="openai/gpt-4o-transcribe", file=("a.wav", wav_bytes(1)), response_format="verbose_json")
    assert all(r.billed_cost_micros == 0 for r in usage_rows(broker, org["organization_id"]))
    assert _wallet(broker, org["organization_id"]).balance_micros == 10_000_000


def test_audio_bad_input(broker, org, client, upstream):
    with pytest.raises(openai.BadRequestError, match="Unsupported audio format 'txt'"):
        client.audio.transcriptions.create(model="mock-transcribe", file=("notes.txt", b"hello"))
    with pytest.raises(openai.BadRequestError, match="mock/mock-chat.*audio transcription.*'audio'"):
        client.audio.transcriptions.create(model="mock-chat", file=("a.wav", wav_bytes(1)))
    with pytest.raises(openai.BadRequestError, match="'audio'"):
        client.audio.transcriptions.create(model="openai/dall-e-3", file=("a.wav", wav_bytes(1)))
    with pytest.raises(openai.APIStatusError) as info:
        client.audio.transcriptions.create(model="mock-transcribe", file=("big.wav", wav_bytes(MAX_AUDIO / 16_000 + 1)))
    assert info.value.status_code == 413
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.audio.transcriptions.create(model="mock-transcribe", file=("a.wav", wav_bytes(1)), response_format="srt")
    with broker.client(org["api_key"]) as http:
        no_file = http.post("/v1/audio/transcriptions", data={"model": "mock-transcribe"}, files={"other": ("x", b"1")})
        assert no_file.status_code == 400 and "'file'" in no_file.json()["error"]["message"]
        not_multipart = http.post("/v1/audio/transcriptions", json={"model": "mock-transcribe"})
        assert not_multipart.status_code == 400
    assert upstream.requests == [] and usage_rows(broker, org["organization_id"]) == []


def test_audio_insufficient_balance_is_402(broker):
    poor = broker.create_org("Poor", credit="0.000100")
    client = openai.OpenAI(base_url=broker.url + "/v1", api_key=poor["api_key"], max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        client.audio.transcriptions.create(model="mock-transcribe", file=("long.wav", wav_bytes(10)))
    assert info.value.status_code == 402  # 10 s -> 1000 micros x 1.30 > 100
    assert [(r.status, r.billed_cost_micros) for r in usage_rows(broker, poor["organization_id"])] == [("refused", 0)]


def test_models_list_shows_unit_prices(client):
    models = {m.id: m.model_extra for m in client.models.list()}
    assert models["mock/mock-image"]["pricing"]["image"] == "0.01"
    assert models["mock/mock-transcribe"]["pricing"]["audio_minute"] == "0.006"
    assert "images" in models["openai/gpt-image-1"]["capabilities"]


# -- Gemini: image models and audio understanding ----------------------------------------


def test_gemini_image_model(broker, org, client, gemini_media):
    images = client.images.generate(model="gemini/gemini-2.5-flash-image", prompt="a kite", n=2)
    assert [base64.b64decode(d.b64_json) for d in images.data] == [FAKE_PNG, FAKE_PNG]
    sent = [r for r in gemini_media.requests if r.path.endswith(":generateContent")]
    assert len(sent) == 2 and sent[0].path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert sent[0].body["generationConfig"] == {"responseModalities": ["IMAGE"]}
    assert sent[0].body["contents"][0]["parts"] == [{"text": "a kite"}]
    [row] = usage_rows(broker, org["organization_id"])
    assert (row.endpoint, row.provider, row.output_tokens, row.billed_cost_micros) == ("images", "gemini", 2, _billed(2 * 39_000))


def test_gemini_audio_understanding(broker, org, client, gemini_media):
    transcript = client.audio.transcriptions.create(model="gemini/gemini-2.5-flash", file=("note.wav", wav_bytes(4)), language="es")
    assert transcript.text.startswith("Echo: Transcribe this audio")
    [sent] = gemini_media.requests
    parts = sent.body["contents"][0]["parts"]
    assert "language is es" in parts[0]["text"]
    assert parts[1]["inlineData"] == {"mimeType": "audio/wav", "data": base64.b64encode(wav_bytes(4)).decode()}
    [row] = usage_rows(broker, org["organization_id"])
    # gemini-2.5-flash audio: $0.0025 a minute -> 4 s = 166.67 micros -> x1.30, rounded up once
    assert (row.endpoint, row.model, row.input_tokens) == ("audio", "gemini/gemini-2.5-flash", 4)
    assert (row.provider_cost_micros, row.billed_cost_micros) == (167, -(-4 * 2_500 * 13_000 // (60 * 10_000)))
    with pytest.raises(openai.BadRequestError, match="gemini/gemini-2.5-flash-lite.*'audio'"):
        client.audio.transcriptions.create(model="gemini/gemini-2.5-flash-lite", file=("note.wav", wav_bytes(1)))

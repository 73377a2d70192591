"""The pure parts: usage by modality, realtime prices, Gemini's messages as Realtime events
(barge-in, tool calls, deduplicated usage), the resampler, client-event checks."""

from __future__ import annotations

import pytest

from aibroker.catalog.registry import load_packaged
from aibroker.kit.money import apply_margin
from aibroker.voice import pricing
from aibroker.voice.audio import Resampler, tone
from aibroker.voice.bridges.gemini_live import GeminiLiveBridge, usage_from_metadata
from aibroker.voice.protocol import EventError, SessionConfig, check_client_event, decode_audio

MODEL = load_packaged()["openai/gpt-realtime"]


def test_usage_by_modality_and_its_price():
    usage = pricing.usage_from_event({
        "total_tokens": 412, "input_tokens": 300, "output_tokens": 112,
        "input_token_details": {"text_tokens": 180, "audio_tokens": 120, "cached_tokens": 64,
                                "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0}},
        "output_token_details": {"text_tokens": 30, "audio_tokens": 82}})
    assert (usage.input_text, usage.input_audio, usage.cached_text, usage.cached_audio, usage.output_text, usage.output_audio) == (180, 120, 64, 0, 30, 82)
    exact = 116 * 4_000_000 + 64 * 400_000 + 120 * 32_000_000 + 30 * 16_000_000 + 82 * 64_000_000
    cost = pricing.cost_of(MODEL, usage, 3000)
    assert cost.billed_micros == apply_margin(exact, 3000) and cost.provider_micros == -(-exact // 1_000_000)
    # Beta usage (no cached details), and no details at all: every token is text.
    beta = pricing.usage_from_event({"input_tokens": 50, "output_tokens": 20, "input_token_details": {"cached_tokens": 10, "audio_tokens": 30},
                                     "output_token_details": {"audio_tokens": 15}})
    assert (beta.input_text, beta.input_audio, beta.cached_text, beta.output_audio) == (20, 30, 10, 15)
    assert pricing.usage_from_event({"input_tokens": 7, "output_tokens": 3}).input_text == 7
    hostile = pricing.usage_from_event({"input_tokens": -5, "output_tokens": "9", "input_token_details": {"audio_tokens": 10**9}})
    assert hostile.input_tokens == 0 and hostile.output_tokens == 0
    assert pricing.usage_from_event(None).input_tokens == 0


def test_an_increment_bounds_a_minute_of_audio():
    increment = pricing.increment_micros(MODEL, 60, 3000)
    minute = pricing.audio_usage(60_000, 60_000)  # at the bounding 32 tokens a second
    assert increment > pricing.cost_of(MODEL, minute, 3000).billed_micros > 0
    # OpenAI's own rates (10 in, 20 out per second) cost less than the bound.
    real = pricing.RealtimeUsage(input_audio=600, output_audio=1200)
    assert pricing.cost_of(MODEL, real, 3000).billed_micros < increment


def test_gemini_usage_metadata_by_modality():
    usage = usage_from_metadata({"promptTokenCount": 412, "responseTokenCount": 96, "cachedContentTokenCount": 20,
                                 "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 220}, {"modality": "AUDIO", "tokenCount": 192}],
                                 "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 96}]})
    assert usage["input_token_details"] == {"text_tokens": 220, "audio_tokens": 192, "cached_tokens": 20}
    assert usage["output_token_details"] == {"text_tokens": 0, "audio_tokens": 96}
    assert usage_from_metadata({"candidatesTokenCount": 5, "thoughtsTokenCount": 2})["output_tokens"] == 7


def test_gemini_messages_as_realtime_events():
    bridge = GeminiLiveBridge("http://127.0.0.1:1", "k", SessionConfig(model="gemini-live-2.5-flash-preview"))
    events = bridge.translate({"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": "AAAA"}}]}}})
    assert [e["type"] for e in events] == ["response.created", "response.output_item.added", "response.content_part.added", "response.output_audio.delta"]
    bridge.translate({"serverContent": {"generationComplete": True}, "usageMetadata": {"promptTokenCount": 1, "responseTokenCount": 1}})
    barge = bridge.translate({"serverContent": {"interrupted": True}})
    done = [e for e in barge if e["type"] == "response.done"][0]
    assert done["response"]["status"] == "cancelled" and barge[-1]["type"] == "input_audio_buffer.speech_started"
    assert done["response"]["usage"]["input_tokens"] == 1
    calls = bridge.translate({"toolCall": {"functionCalls": [{"id": "fc-9", "name": "f", "args": {"a": 1}}]}})
    assert [e["type"] for e in calls if e["type"].startswith("response.function")] == ["response.function_call_arguments.done"]
    assert calls[-1]["type"] == "response.done" and calls[-1]["response"]["usage"] is None  # billed at turnComplete
    assert bridge.tool_names == {"fc-9": "f"}
    # Two snapshots in one turn: the last one is the turn's usage.
    bridge.translate({"serverContent": {"outputTranscription": {"text": "hi"}}, "usageMetadata": {"promptTokenCount": 5}})
    end = bridge.translate({"serverContent": {"turnComplete": True}, "usageMetadata": {"promptTokenCount": 9, "responseTokenCount": 3},
                            "sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}})
    assert end[-1]["response"]["usage"]["input_tokens"] == 9 and bridge.handle == "h1"
    assert [e for e in end if e["type"] == "response.output_audio_transcript.done"][0]["transcript"] == "hi"


def test_the_resampler_keeps_the_duration():
    resampler = Resampler(24_000, 16_000)
    pcm = tone(1.0)
    out = b"".join(resampler.feed(pcm[i:i + 960]) for i in range(0, len(pcm), 960)) + resampler.flush()
    assert abs(len(out) - 32_000) <= 64  # one second at 16 kHz, PCM16


def test_client_event_checks():
    with pytest.raises(EventError):
        check_client_event({"type": "response.create", "response": "now"})
    with pytest.raises(EventError) as exc:
        decode_audio({"type": "input_audio_buffer.append", "audio": "AAAA" * 10}, max_bytes=8)
    assert exc.value.code == "frame_too_large"
    config = SessionConfig(model="m")
    config.apply({"tools": [{"type": "function", "function": {"name": "nested", "parameters": {}}}], "turn_detection": None,
                  "modalities": ["text"]})
    assert config.tools == [{"type": "function", "name": "nested", "parameters": {}}]
    assert config.turn_detection is None and config.output_modalities == ["text"]
    with pytest.raises(EventError):
        config.apply({"voice": ""})

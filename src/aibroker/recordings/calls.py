"""The worker's AI calls, through the gateway as the tenant: each segment's transcription
(feature `recording_transcription`, the /v1/audio/transcriptions pipeline) and the analysis
of the transcript (feature `recording_analysis`, chat with a JSON-schema answer).

Models: the routing matrix's when it routes the feature to a model that can do the job
(e.g. a Gemini model: the audio itself then goes to Gemini, inline or through its Files
API); else AIBROKER_RECORDINGS_TRANSCRIPTION_MODEL / _ANALYSIS_MODEL; else whisper-1 when
OpenAI is configured (the mock otherwise) and the platform's default chat model."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from aibroker.catalog.registry import AUDIO
from aibroker.gateway.context import CallContext
from aibroker.gateway.media import MediaGateway
from aibroker.gateway.service import Gateway
from aibroker.gateway.validation import check_audio
from aibroker.kit.ids import new_request_id
from aibroker.providers.base import AudioFile
from aibroker.tenancy.auth import Principal

TRANSCRIBE_FEATURE = "recording_transcription"
ANALYSIS_FEATURE = "recording_analysis"
SCHEMA_NAME = "recording_analysis"
SENTIMENTS = ("positive", "neutral", "negative", "mixed")
CHARS_PER_SECOND = 40  # a generous bound on transcript length per second of speech (for the estimate)
ANALYSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "sentiment", "topics", "action_items", "language"],
    "properties": {
        "summary": {"type": "string", "description": "Two or three sentences."},
        "sentiment": {"type": "string", "enum": list(SENTIMENTS)},
        "topics": {"type": "array", "items": {"type": "string"}, "description": "Up to 8 short topics."},
        "action_items": {"type": "array", "items": {"type": "string"}, "description": "Follow-ups someone committed to."},
        "language": {"type": "string", "description": "ISO-639-1 code of the conversation."},
    },
}
INSTRUCTIONS = ("You analyse the transcript of a recorded conversation. Answer in JSON with a short summary, the overall "
                "sentiment, the main topics, the action items (who will do what) and the language.")


def context(principal: Principal, feature: str, endpoint: str, user_id: str | None, request_id: str | None = None) -> CallContext:
    return CallContext(request_id=request_id or new_request_id(), principal=principal, endpoint=endpoint, feature=feature,
                       user_id=user_id)


def transcription_model(gateway: Gateway, ctx: CallContext, configured: str | None, enabled: set[str]) -> str | None:
    """The model to name: the matrix's first candidate that takes audio when it routes the
    feature (a Gemini chat model counts: it listens); None lets a matrix that refuses the
    feature say why on the call; else the configured model, whisper-1, or the mock."""
    router: Any = gateway.router
    resolve = getattr(router, "resolution", None)
    if resolve is not None:
        resolution = resolve(ctx)
        if resolution.routed:
            if not resolution.allowed:
                return None
            for candidate in resolution.candidates:
                entry = router.catalog.get(candidate.model)
                if entry is not None and entry.supports("audio"):
                    return str(entry.id)
    if configured:
        return configured
    return "openai/whisper-1" if "openai" in enabled else "mock/mock-transcribe"


def analysis_body(transcript: str, model: str | None, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model or "auto",
        "messages": [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": transcript}],
        "response_format": {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": ANALYSIS_SCHEMA}},
        "max_tokens": max_tokens,
        # A retried job asks the very same question: the cache answers what was already paid for.
        "cache": True,
    }


def estimate(gateway: Gateway, ctx_audio: CallContext, ctx_chat: CallContext, model: str | None, segment_seconds: list[int],
             analysis: dict[str, Any]) -> int:
    """The most processing can cost: each segment's transcription bound plus the analysis bound
    (its transcript sized generously from the duration)."""
    media = MediaGateway(gateway)
    chain = media._chain(ctx_audio, model, AUDIO, check_audio)
    total = 0
    for seconds in segment_seconds:
        total += max(media._cost(ctx_audio, m, seconds * m.audio_minute_micros, 60).billed_micros for m in chain)
    body = dict(analysis)
    body["messages"] = [analysis["messages"][0], {"role": "user", "content": "x" * (sum(segment_seconds) * CHARS_PER_SECOND)}]
    return total + gateway.plan_chat(ctx_chat, body).bound_micros


@dataclass(slots=True)
class Transcribed:
    text: str
    language: str | None
    cost_micros: int
    model: str


async def transcribe(gateway: Gateway, ctx: CallContext, model: str | None, index: int, wav: bytes, language: str | None) -> Transcribed:
    fields: dict[str, Any] = {"response_format": "verbose_json"}
    if model:
        fields["model"] = model
    if language:
        fields["language"] = language
    answer, _seconds = await MediaGateway(gateway).transcribe(ctx, fields, AudioFile(f"segment-{index:05d}.wav", wav, "audio/wav"))
    text = str(answer.body.get("text") or "").strip()
    return Transcribed(text, answer.body.get("language"), answer.cost.billed_micros, answer.model.id)


@dataclass(slots=True)
class Analysed:
    summary: str
    sentiment: str
    topics: list[str]
    action_items: list[str]
    language: str | None
    cost_micros: int
    model: str
    extra: dict[str, Any] = field(default_factory=dict)


def _strings(value: Any, limit: int) -> list[str]:
    return [str(v)[:500] for v in value[:limit]] if isinstance(value, list) else []


async def analyse(gateway: Gateway, ctx: CallContext, body: dict[str, Any]) -> Analysed:
    answer = await gateway.chat(ctx, body)
    choice = (answer.body.get("choices") or [{}])[0]
    content = (choice.get("message") or {}).get("content") or ""
    try:
        data = json.loads(content)
    except (TypeError, ValueError):
        data = {"summary": content}
    if not isinstance(data, dict):
        data = {"summary": content}
    sentiment = str(data.get("sentiment") or "neutral").lower()
    return Analysed(
        summary=str(data.get("summary") or "")[:10_000], sentiment=sentiment if sentiment in SENTIMENTS else "neutral",
        topics=_strings(data.get("topics"), 20), action_items=_strings(data.get("action_items"), 50),
        language=str(data["language"])[:40] if data.get("language") else None,
        cost_micros=answer.cost.billed_micros, model=answer.model.id,
    )


def whole_seconds(samples: int, rate: int) -> int:
    return max(1, math.ceil(samples / rate))

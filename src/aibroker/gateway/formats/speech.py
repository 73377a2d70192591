"""POST /v1/audio/speech: text to speech, answered with audio bytes.

OpenAI's TTS models (tts-1, tts-1-hd, gpt-4o-mini-tts) are passed through; `mock-tts`
answers a WAV (or raw PCM). Billed per character of `input` at the catalog's per-1M price,
held before the call (the exact cost: the characters are known) and settled after."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from aibroker.gateway.formats.schemas import openapi_body
from aibroker.gateway.http import authenticate, read_json, services, unless_disconnected, validate
from aibroker.gateway.media import MediaGateway
from aibroker.gateway.request_context import call_context

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

MAX_INPUT_CHARS = 4096  # OpenAI's limit
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
# The MIME type of each format, when an upstream does not say.
MIME = {"mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm"}


class SpeechRequest(BaseModel):
    """OpenAI's speech request. Other fields pass through to the provider."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1, description="`mock-tts`, `tts-1`, `tts-1-hd`, `gpt-4o-mini-tts`.")
    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS, description="The text to speak (billed per character).")
    voice: str | dict[str, Any] = Field(description="A voice name (alloy, ash, coral, echo, nova, ...) or a custom voice object.")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = Field(
        default=None, description="Default mp3 (OpenAI); mock-tts answers wav (its default) or pcm only.")
    speed: float | None = Field(default=None, ge=0.25, le=4.0)
    instructions: str | None = Field(default=None, max_length=MAX_INPUT_CHARS)
    stream_format: Literal["audio"] | None = Field(default=None, description="Only `audio` (sse is not served).")
    feature: str | None = Field(default=None, description="aibroker: the feature (usage type) this call serves.")


@router.post("/audio/speech", openapi_extra=openapi_body(SpeechRequest))
async def create_speech(request: Request) -> Response:
    """Speak `input` (OpenAI's format); the answer is the audio (`content-type` per format:
    audio/mpeg, audio/wav, ...). Billed per character at the catalog's price; the cost is in
    `x-aibroker-cost-micros`. `mock-tts` answers PCM16 mono 24 kHz as wav or pcm (other
    formats: 400 naming those)."""
    principal = await authenticate(request)
    body = await read_json(request)
    validate(SpeechRequest, body)
    ctx = call_context(request, principal, "speech", body)
    answer, audio = await unless_disconnected(request, MediaGateway(services(request).gateway).speak(ctx, body), ctx)
    content_type = audio.content_type
    if content_type in ("", "application/octet-stream") and body.get("response_format") in MIME:
        content_type = MIME[body["response_format"]]
    headers = {**answer.headers(ctx.request_id), "x-aibroker-characters": str(len(body["input"]))}
    return Response(audio.content, media_type=content_type, headers=headers)

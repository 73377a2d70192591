"""Seed 001's media routes, thin doors onto the gateway's media pipeline:
POST /api/ai/images/generate and POST /api/ai/audio/transcribe."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from aibroker.ai.doors import default_of_kind
from aibroker.catalog.registry import AUDIO, IMAGE
from aibroker.errors import InvalidRequest, PayloadTooLarge
from aibroker.gateway.formats.media import AUDIO_FORMATS, AUDIO_MIME, FORM_OVERHEAD_BYTES
from aibroker.gateway.formats.schemas import openapi_body
from aibroker.gateway.http import JSONResponse, authenticate, read_json, services, unless_disconnected, validate
from aibroker.gateway.media import MediaGateway
from aibroker.gateway.request_context import call_context
from aibroker.providers.base import AudioFile

router = APIRouter(prefix="/api/ai", tags=["AI (seed 001)"])


class AiImageRequest(BaseModel):
    """Image generation (seed 001)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=32000, description="What to draw.")
    model: str | None = Field(default=None, max_length=200, description="An image model; default: the first enabled one.")
    n: int = Field(default=1, ge=1, le=10, description="How many images; each is billed.")
    size: str | None = Field(default=None, max_length=40, description="e.g. 1024x1024.")
    quality: str | None = Field(default=None, max_length=40, description="e.g. standard / hd.")
    response_format: Literal["url", "b64_json"] | None = Field(default=None, description="url or b64_json.")
    feature: str | None = Field(default=None, max_length=80, description="The feature (usage type) this call serves.")


class AiTranscribeRequest(BaseModel):
    """Audio transcription as JSON: the audio base64-encoded (multipart with `file` works too)."""

    model_config = ConfigDict(extra="forbid")

    audio: str = Field(min_length=1, description="The audio file, base64.")
    filename: str = Field(default="audio.wav", min_length=1, max_length=200, description=f"Its name; the extension says the format: {', '.join(AUDIO_FORMATS)}.")
    model: str | None = Field(default=None, max_length=200, description="An audio model; default: the first enabled one.")
    language: str | None = Field(default=None, max_length=20, description="ISO-639-1 language of the audio.")
    prompt: str | None = Field(default=None, max_length=4000, description="Text to guide the transcription.")
    feature: str | None = Field(default=None, max_length=80, description="The feature (usage type) this call serves.")


def _media(request: Request) -> MediaGateway:
    return MediaGateway(services(request).gateway)


@router.post("/images/generate", openapi_extra=openapi_body(AiImageRequest))
async def generate_image(request: Request) -> Response:
    """Generate images: `{"prompt", "model"?, "n"?, "size"?, "quality"?}` -> `{"images": [{"url" | "b64_json"}], "cost_micros", ...}`."""
    principal = await authenticate(request)
    req = validate(AiImageRequest, await read_json(request))
    ctx = call_context(request, principal, "images", {"feature": req.feature})
    body: dict[str, Any] = {"prompt": req.prompt, "model": req.model or default_of_kind(request, IMAGE), "n": req.n}
    body.update({k: v for k, v in (("size", req.size), ("quality", req.quality), ("response_format", req.response_format)) if v})
    answer = await unless_disconnected(request, _media(request).generate_images(ctx, body))
    result = {"id": ctx.request_id, "object": "ai.images", "images": answer.body.get("data") or [], "model": answer.model.id,
              "provider": answer.model.provider, "cost_micros": answer.cost.billed_micros, "latency_ms": ctx.elapsed_ms()}
    return JSONResponse(result, headers=answer.headers(ctx.request_id))


def _audio_file(name: str, content: bytes, limit: int) -> AudioFile:
    if len(content) > limit:
        raise PayloadTooLarge(f"The audio file is larger than the {limit} bytes allowed.", param="audio")
    if not content:
        raise InvalidRequest("The audio file is empty.", param="audio")
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in AUDIO_FORMATS:
        raise InvalidRequest(f"Unsupported audio format '{extension or name}'. Supported formats: {', '.join(AUDIO_FORMATS)}.",
                             param="filename", code="unsupported_format")
    return AudioFile(filename=name, content=content, content_type=AUDIO_MIME[extension])


async def _from_form(request: Request, limit: int) -> tuple[AudioFile, dict[str, Any]]:
    form = await request.form(max_files=1, max_fields=20)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("Send the audio as the multipart file field 'file'.", param="file")
        audio = _audio_file(upload.filename or "audio", await upload.read(limit + 1), limit)
        fields = {}
        for name in ("model", "language", "prompt", "feature"):
            value = form.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidRequest(f"'{name}' must be a text field.", param=name)
            if value:
                fields[name] = value[:4000]
    finally:
        await form.close()
    return audio, fields


async def _from_json(request: Request, limit: int) -> tuple[AudioFile, dict[str, Any]]:
    req = validate(AiTranscribeRequest, await read_json(request))
    try:
        content = base64.b64decode(req.audio, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("'audio' is not valid base64.", param="audio") from None
    fields = {k: v for k, v in (("model", req.model), ("language", req.language), ("prompt", req.prompt), ("feature", req.feature)) if v}
    return _audio_file(req.filename, content, limit), fields


@router.post("/audio/transcribe", openapi_extra=openapi_body(AiTranscribeRequest))
async def transcribe(request: Request) -> Response:
    """Transcribe audio: multipart (`file`, `model`?, `language`?, `prompt`?) or JSON
    (`audio` base64, `filename`, ...) -> `{"text", "duration_seconds", "cost_micros", ...}`.
    Billed per second at the catalog's per-minute price, as /v1/audio/transcriptions."""
    principal = await authenticate(request)
    limit = services(request).settings.server.max_audio_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit * 4 // 3 + FORM_OVERHEAD_BYTES:
        raise PayloadTooLarge(f"The upload is {declared} bytes; audio files may be at most {limit} bytes.")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        audio, fields = await _from_form(request, limit)
    else:
        audio, fields = await _from_json(request, limit)
    ctx = call_context(request, principal, "audio", {"feature": fields.pop("feature", None)})
    fields["model"] = fields.get("model") or default_of_kind(request, AUDIO)
    fields["response_format"] = "json"
    answer, seconds = await unless_disconnected(request, _media(request).transcribe(ctx, fields, audio))
    result = {"id": ctx.request_id, "object": "ai.transcription", "text": str(answer.body.get("text", "")),
              "duration_seconds": seconds, "model": answer.model.id, "provider": answer.model.provider,
              "cost_micros": answer.cost.billed_micros, "latency_ms": ctx.elapsed_ms()}
    return JSONResponse(result, headers={**answer.headers(ctx.request_id), "x-aibroker-audio-seconds": str(seconds)})

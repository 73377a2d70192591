"""OpenAI-compatible media routes: /v1/images/generations and /v1/audio/transcriptions.

Both run the gateway pipeline (routing, limits, hold, retries, fallbacks, settlement) and
are priced per unit from the catalog: per image, and per minute of audio."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from aibroker.errors import InvalidRequest, PayloadTooLarge
from aibroker.gateway.formats.schemas import openapi_body
from aibroker.gateway.http import (
    JSONResponse,
    authenticate,
    read_json,
    services,
    unless_disconnected,
    validate,
)
from aibroker.gateway.media import MediaGateway
from aibroker.gateway.request_context import call_context
from aibroker.providers.base import AudioFile

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

# What OpenAI's transcription API accepts (by file extension).
AUDIO_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
# A canonical MIME type per format: clients send anything (audio/x-wav, octet-stream, ...).
AUDIO_MIME = {"flac": "audio/flac", "m4a": "audio/mp4", "mp3": "audio/mp3", "mp4": "audio/mp4", "mpeg": "audio/mpeg",
              "mpga": "audio/mpeg", "oga": "audio/ogg", "ogg": "audio/ogg", "wav": "audio/wav", "webm": "audio/webm"}
TRANSCRIPT_FORMATS = ("json", "text", "verbose_json")
FORM_OVERHEAD_BYTES = 1024 * 1024  # room for the other form fields and multipart framing


class ImageGenerationRequest(BaseModel):
    """OpenAI's image generation request. Other fields (style, background, ...) pass through."""

    model_config = ConfigDict(extra="allow", strict=True)  # strict: the raw body is what goes upstream

    model: str = Field(min_length=1, description="An image model: `mock-image`, `openai/gpt-image-1`, `dall-e-3`, `gemini/gemini-2.5-flash-image`.")
    prompt: str = Field(min_length=1, max_length=32000, description="What to draw.")
    n: int | None = Field(default=None, ge=1, le=10, description="How many images (1-10); each is billed.")
    size: str | None = Field(default=None, description="e.g. 1024x1024; prices may depend on it.")
    quality: str | None = Field(default=None, description="e.g. standard / hd, low / medium / high; prices may depend on it.")
    response_format: Literal["url", "b64_json"] | None = None
    user: str | None = None
    feature: str | None = Field(default=None, description="aibroker: the feature (usage type) this call serves.")


_TEXT = {"type": "string"}
TRANSCRIPTION_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "model"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": f"The audio: {', '.join(AUDIO_FORMATS)}."},
        "model": _TEXT, "language": _TEXT, "prompt": _TEXT, "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "response_format": {"type": "string", "enum": list(TRANSCRIPT_FORMATS)},
        "feature": _TEXT, "profile": _TEXT, "group": _TEXT,
    },
}}}}}


def _media(request: Request) -> MediaGateway:
    return MediaGateway(services(request).gateway)


@router.post("/images/generations", openapi_extra=openapi_body(ImageGenerationRequest))
async def generate_images(request: Request) -> Response:
    """Generate images (OpenAI's format). Billed per image returned, at the catalog price for
    the model (and quality/size where the catalog distinguishes them), plus the margin.
    The hold covers `n` images at the dearest price that could apply."""
    principal = await authenticate(request)
    body = await read_json(request)
    validate(ImageGenerationRequest, body)
    ctx = call_context(request, principal, "images", body)
    answer = await unless_disconnected(request, _media(request).generate_images(ctx, body))
    return JSONResponse(answer.body, headers=answer.headers(ctx.request_id))


def _text_field(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a text field.", param=name)
    return value


async def _read_upload(form: Any, limit: int) -> AudioFile:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("Send the audio as the multipart file field 'file'.", param="file")
    content = await upload.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLarge(f"The audio file is larger than the {limit} bytes allowed.", param="file")
    if not content:
        raise InvalidRequest("The audio file is empty.", param="file")
    name = upload.filename or "audio"
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in AUDIO_FORMATS:
        raise InvalidRequest(
            f"Unsupported audio format '{extension or name}'. Supported formats: {', '.join(AUDIO_FORMATS)}.",
            param="file",
            code="unsupported_format",
        )
    return AudioFile(filename=name, content=content, content_type=AUDIO_MIME[extension])


def _fields(form: Any) -> dict[str, Any]:
    model = _text_field(form, "model")
    if not model:
        raise InvalidRequest("you must provide a model parameter", param="model")
    response_format = _text_field(form, "response_format") or "json"
    if response_format not in TRANSCRIPT_FORMATS:
        raise InvalidRequest(
            f"response_format must be one of {', '.join(TRANSCRIPT_FORMATS)}.", param="response_format"
        )
    fields: dict[str, Any] = {"model": model, "response_format": response_format}
    for name in ("language", "prompt"):
        if (value := _text_field(form, name)) is not None:
            fields[name] = value
    if (raw := _text_field(form, "temperature")) is not None:
        try:
            temperature = float(raw)
        except ValueError:
            temperature = -1.0
        if not 0 <= temperature <= 1:
            raise InvalidRequest("temperature must be a number between 0 and 1.", param="temperature")
        fields["temperature"] = temperature
    return fields


@router.post("/audio/transcriptions", openapi_extra=TRANSCRIPTION_BODY)
async def transcribe_audio(request: Request) -> Response:
    """Transcribe audio (OpenAI's format: multipart with `file`, `model`, optional `language`,
    `prompt`, `response_format` json | text | verbose_json, `temperature`). Billed per second
    of audio at the catalog's per-minute price: WAV durations come from the file header;
    other formats are held as if 8 kbps and billed at the duration the provider reports.
    Files over AIBROKER_MAX_AUDIO_BYTES (25 MB) get 413; unsupported formats 400."""
    principal = await authenticate(request)
    limit = services(request).settings.server.max_audio_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD_BYTES:
        raise PayloadTooLarge(f"The upload is {declared} bytes; audio files may be at most {limit} bytes.")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("Send multipart/form-data with the audio in the 'file' field.", param="file")
    form = await request.form(max_files=1, max_fields=20)
    try:
        audio = await _read_upload(form, limit)
        fields = _fields(form)
        broker_fields = {name: _text_field(form, name) for name in ("feature", "profile", "group")}
    finally:
        await form.close()
    ctx = call_context(request, principal, "audio", broker_fields)
    answer, seconds = await unless_disconnected(request, _media(request).transcribe(ctx, fields, audio))
    headers = {**answer.headers(ctx.request_id), "x-aibroker-audio-seconds": str(seconds)}
    text = str(answer.body.get("text", ""))
    if fields["response_format"] == "text":
        return PlainTextResponse(text, headers=headers)
    if fields["response_format"] == "verbose_json":
        verbose = {"task": "transcribe", "language": fields.get("language"), **answer.body}
        verbose.setdefault("duration", float(seconds))
        return JSONResponse(verbose, headers=headers)
    return JSONResponse({"text": text, "usage": {"type": "duration", "seconds": seconds}}, headers=headers)

"""Request and response types of the recordings routes (they are the API docs)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aibroker.models import Recording, RecordingAnalysis

MAX_CHUNKS = 10_000
SHA256 = r"^[0-9a-fA-F]{64}$"


class RecordingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=300, description="A name for the recording.")
    content_type: str | None = Field(default=None, max_length=120, description="The client's MIME type (informative; the audio is probed).")
    total_bytes: int | None = Field(default=None, ge=1, le=2**50, description="The file's size: finalize checks it, and it must fit the storage quota now.")
    total_chunks: int | None = Field(default=None, ge=1, le=MAX_CHUNKS, description="How many chunks will be sent (indexes 0..total_chunks-1).")
    sha256: str | None = Field(default=None, pattern=SHA256, description="The whole file's SHA-256 (hex): finalize checks it.")


class ReprocessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UploadHow(BaseModel):
    chunk_url: str = Field(description="POST each chunk here: raw body, `x-chunk-index` (from 0), optional `x-chunk-sha256`.")
    finalize_url: str = Field(description="POST here once every chunk is in.")
    max_chunk_bytes: int = Field(description="The largest chunk accepted (413 above it).")


class Failure(BaseModel):
    code: str = Field(description="insufficient_balance, corrupt_media, truncated_media, processing_failed, or a refusal's code.")
    message: str | None = None


class RecordingOut(BaseModel):
    id: str
    status: str = Field(description="uploading -> uploaded -> processing -> analyzed, or failed.")
    title: str
    user_id: str | None = Field(description="Who uploaded it (when known).")
    content_type: str | None = Field(description="As the client declared it.")
    media_type: str | None = Field(description="As probed: audio/wav, audio/mpeg, audio/mp4, audio/ogg, audio/webm.")
    codec: str | None
    duration_seconds: float | None
    size_bytes: int | None = Field(description="The assembled file's size.")
    sha256: str | None
    chunk_count: int = Field(description="Chunks received (while uploading) or assembled.")
    progress: int = Field(description="0-100: segments transcribed, then the analysis.")
    cost_micros: int = Field(description="What processing charged the wallet so far (micro-units).")
    failure: Failure | None = None
    created_at: dt.datetime
    uploaded_at: dt.datetime | None
    processed_at: dt.datetime | None
    upload: UploadHow | None = Field(default=None, description="While uploading: how to send the chunks.")


class RecordingPage(BaseModel):
    object: str = "list"
    data: list[RecordingOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null at the end.")


class ChunkOut(BaseModel):
    recording_id: str
    index: int
    size_bytes: int
    sha256: str
    received_chunks: int = Field(description="How many distinct chunks the recording has now.")


class StatusOut(BaseModel):
    id: str
    status: str
    progress: int = Field(ge=0, le=100)
    failure: Failure | None = None


class TranscriptSegment(BaseModel):
    index: int
    start: float = Field(description="Seconds from the start of the recording.")
    end: float
    text: str


class AnalysisOut(BaseModel):
    recording_id: str
    transcript: str
    segments: list[TranscriptSegment]
    language: str | None
    summary: str
    sentiment: str = Field(description="positive, neutral, negative or mixed.")
    topics: list[str]
    action_items: list[str]
    models: dict[str, Any] = Field(description="The models that transcribed and analysed.")
    cost_micros: int
    request_ids: list[str] = Field(description="The gateway request ids of the AI calls (see /v1/usage).")
    created_at: dt.datetime


def recording_out(row: Recording, *, max_chunk_bytes: int, chunk_count: int | None = None) -> RecordingOut:
    upload = None
    if row.status == "uploading":
        upload = UploadHow(chunk_url=f"/api/chunks/{row.id}", finalize_url=f"/api/finalize/{row.id}", max_chunk_bytes=max_chunk_bytes)
    failure = Failure(code=row.failure_code, message=row.failure_message) if row.status == "failed" and row.failure_code else None
    return RecordingOut(
        id=row.id, status=row.status, title=row.title, user_id=row.user_id, content_type=row.content_type,
        media_type=row.media_type, codec=row.codec,
        duration_seconds=row.duration_ms / 1000 if row.duration_ms is not None else None,
        size_bytes=row.size_bytes, sha256=row.sha256, chunk_count=row.chunk_count if chunk_count is None else chunk_count,
        progress=row.progress, cost_micros=row.cost_micros, failure=failure, created_at=row.created_at,
        uploaded_at=row.uploaded_at, processed_at=row.processed_at, upload=upload,
    )


def status_out(row: Recording) -> StatusOut:
    failure = Failure(code=row.failure_code, message=row.failure_message) if row.status == "failed" and row.failure_code else None
    return StatusOut(id=row.id, status=row.status, progress=row.progress, failure=failure)


def analysis_out(row: RecordingAnalysis) -> AnalysisOut:
    return AnalysisOut(
        recording_id=row.recording_id, transcript=row.transcript, segments=[TranscriptSegment(**s) for s in row.segments],
        language=row.language, summary=row.summary, sentiment=row.sentiment, topics=list(row.topics),
        action_items=list(row.action_items), models=dict(row.models), cost_micros=row.cost_micros,
        request_ids=list(row.request_ids), created_at=row.created_at,
    )

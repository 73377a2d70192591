"""Seed 002's recordings and storage routes: create, chunks, finalize, direct upload, list,
read, download (HTTP Range), analysis, status, delete, reprocess."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from aibroker.deps import db_session
from aibroker.errors import BrokerError, InvalidRequest, NotFound, PayloadTooLarge
from aibroker.gateway.http import services
from aibroker.recordings import auth
from aibroker.recordings.repository import RecordingRepository
from aibroker.recordings.schemas import (
    AnalysisOut,
    ChunkOut,
    RecordingCreate,
    RecordingOut,
    RecordingPage,
    StatusOut,
    analysis_out,
    recording_out,
    status_out,
)
from aibroker.recordings.service import RecordingService
from aibroker.storage import blob_store_for
from aibroker.tenancy.auth import Principal

router = APIRouter(tags=["Recordings"])
READ_PIECE = 1024 * 1024
STATUSES = Literal["uploading", "uploaded", "processing", "analyzed", "failed"]
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "The audio: WAV, MP3, M4A/AAC, OGG/Opus, WebM/Opus."},
                   "title": {"type": "string", "maxLength": 300}},
}}}}}
CHUNK_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


def _max_chunk(request: Request) -> int:
    return int(services(request).settings.storage.max_chunk_bytes)


def _service(request: Request, session: AsyncSession) -> RecordingService:
    return RecordingService(session, blob_store_for(services(request).settings.storage), max_chunk_bytes=_max_chunk(request))


def _out(request: Request, row: Any) -> RecordingOut:
    return recording_out(row, max_chunk_bytes=_max_chunk(request))


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for piece in request.stream():
            yield piece
    except ClientDisconnect:
        raise InvalidRequest("The client closed the connection before sending the whole body.", code="client_disconnected") from None


def _declared_over(request: Request, limit: int) -> None:
    declared = (request.headers.get("content-length") or "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is {declared} bytes; the limit is {limit} bytes.", code="body_too_large")


def _index(value: str | None) -> int:
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        raise InvalidRequest("Send the chunk's index (0, 1, 2 ...) in the x-chunk-index header.", param="x-chunk-index",
                             code="chunk_index_out_of_range")
    return int(text)


@router.post("/api/recordings", status_code=201, response_model=RecordingOut)
async def create_recording(body: RecordingCreate, request: Request,
                           session: AsyncSession = Depends(db_session, scope="function"),
                           who: Principal = Depends(auth.uploader)) -> RecordingOut:
    """Create a recording to upload in chunks; the answer says where to send them. 403
    `plan_limit_max_recordings` at the plan's limit; 413 `storage_quota_exceeded` when the
    declared `total_bytes` cannot fit the plan's storage."""
    row = await _service(request, session).create(who, body)
    return _out(request, row)


@router.post("/api/chunks/{recording_id}", response_model=ChunkOut, openapi_extra=CHUNK_BODY)
async def upload_chunk(
    recording_id: str, request: Request,
    x_chunk_index: str | None = Header(default=None, max_length=12, description="The chunk's index, from 0."),
    x_chunk_sha256: str | None = Header(default=None, pattern=r"^[0-9a-fA-F]{64}$", description="The chunk's SHA-256 (hex): checked."),
    session: AsyncSession = Depends(db_session, scope="function"),
    who: Principal = Depends(auth.uploader),
) -> ChunkOut:
    """One chunk, as the raw body (streamed to storage). Idempotent per index (the same bytes
    again change nothing), in any order. 413 above AIBROKER_MAX_CHUNK_BYTES or the storage
    quota; a storage outage is a 503 that keeps nothing (send the chunk again)."""
    service = _service(request, session)
    _declared_over(request, service.max_chunk_bytes)
    index = _index(x_chunk_index)
    row = await service.uploading(who, recording_id)
    service.check_index(row, index)
    saved = await service.put_chunk(who, row, index, _body(request), x_chunk_sha256)
    await session.commit()
    if saved.stale_key:
        try:
            await service.store.delete(saved.stale_key)
        except BrokerError:
            pass  # an orphan under the recording's prefix: removed with the recording
    return ChunkOut(recording_id=recording_id, index=saved.index, size_bytes=saved.size, sha256=saved.sha256,
                    received_chunks=saved.received)


@router.post("/api/finalize/{recording_id}", response_model=RecordingOut)
async def finalize_recording(recording_id: str, request: Request, response: Response,
                             session: AsyncSession = Depends(db_session, scope="function"),
                             who: Principal = Depends(auth.uploader)) -> RecordingOut:
    """Assemble the chunks into the recording (streamed), check its size and SHA-256 when
    declared, probe that it is audio, and queue its processing. 409 `missing_chunks` lists
    the absent indexes; 400 `unsupported_media` for bytes that are not audio. Finalizing
    again answers the recording as it is."""
    service = _service(request, session)
    row, _ = await service.finalize(who, recording_id)
    chunk_keys = f"{row.organization_id}/recordings/{row.id}/chunks/"
    await session.commit()
    try:
        await service.store.delete_prefix(chunk_keys)
    except BrokerError:
        pass  # the chunks' blobs go with the recording later
    return _out(request, row)


@router.post("/api/upload", status_code=201, response_model=RecordingOut, openapi_extra=UPLOAD_BODY)
async def upload_recording(request: Request, session: AsyncSession = Depends(db_session, scope="function"),
                           who: Principal = Depends(auth.uploader)) -> RecordingOut:
    """A whole file in one request (multipart field `file`, optional `title`): stored, probed
    and queued for processing; answers the recording."""
    limit = services(request).settings.recordings.max_upload_bytes
    _declared_over(request, limit + 1024 * 1024)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("Send multipart/form-data with the audio in the 'file' field.", param="file")
    try:
        form = await request.form(max_files=1, max_fields=5)
    except ClientDisconnect:
        raise InvalidRequest("The client closed the connection before sending the whole body.", code="client_disconnected") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("Send the audio as the multipart file field 'file'.", param="file")
        title = form.get("title")
        if title is not None and (not isinstance(title, str) or len(title) > 300):
            raise InvalidRequest("'title' must be a text field of at most 300 characters.", param="title")

        async def pieces() -> AsyncIterator[bytes]:
            while piece := await upload.read(READ_PIECE):
                yield piece

        row = await _service(request, session).upload(who, pieces(), title=title, content_type=upload.content_type, limit=limit)
    finally:
        await form.close()
    return _out(request, row)


@router.get("/api/recordings", response_model=RecordingPage)
async def list_recordings(
    request: Request,
    status: STATUSES | None = Query(default=None),
    user_id: str | None = Query(default=None, max_length=120, description="Only this user's recordings."),
    created_from: dt.datetime | None = Query(default=None, alias="from", description="Created at or after (ISO 8601)."),
    created_to: dt.datetime | None = Query(default=None, alias="to", description="Created before (ISO 8601)."),
    q: str | None = Query(default=None, min_length=1, max_length=200, description="Text in the title or the transcript."),
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = Query(default=None, max_length=60, description="`next_cursor` of the previous page."),
    session: AsyncSession = Depends(db_session, scope="function"),
    who: Principal = Depends(auth.reader),
) -> RecordingPage:
    """The organization's recordings, newest first, paginated by cursor."""
    created_from, created_to = (d.replace(tzinfo=dt.UTC) if d is not None and d.tzinfo is None else d
                                for d in (created_from, created_to))  # a time without a zone is UTC
    rows = await RecordingRepository(session).page(
        who.organization_id, limit=limit, before_id=cursor, status=status, user_id=user_id,
        created_from=created_from, created_to=created_to, text=q,
    )
    return RecordingPage(data=[_out(request, r) for r in rows], next_cursor=rows[-1].id if len(rows) == limit else None)


@router.get("/api/recordings/{recording_id}", response_model=RecordingOut)
async def get_recording(recording_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function"),
                        who: Principal = Depends(auth.reader)) -> RecordingOut:
    """One recording of the organization (404 for another organization's)."""
    return _out(request, await RecordingRepository(session).get(who.organization_id, recording_id))


RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of a single `bytes=` range; None for the whole file; 416 when unsatisfiable."""
    if not header:
        return None
    match = RANGE.match(header.strip())
    if not match or (not match[1] and not match[2]):
        return None  # not a form we serve: the whole file (RFC 9110 allows ignoring Range)
    if not match[1]:
        length = int(match[2])
        start, end = max(0, size - length), size
    else:
        start = int(match[1])
        end = min(size, int(match[2]) + 1) if match[2] else size
    if start >= size or end <= start:
        raise BrokerError(f"The range is outside the file's {size} bytes.", status_code=416, code="range_not_satisfiable",
                          headers={"Content-Range": f"bytes */{size}"})
    return start, end


@router.get("/api/recordings/{recording_id}/audio", response_class=Response)
async def download_audio(recording_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function"),
                         who: Principal = Depends(auth.reader)) -> Response:
    """The assembled audio; supports `Range: bytes=start-end` (206)."""
    row = await RecordingRepository(session).get(who.organization_id, recording_id)
    if not row.storage_key or row.size_bytes is None:
        raise NotFound("The recording has no assembled audio yet.", code="audio_not_ready")
    size, key, media_type = int(row.size_bytes), row.storage_key, row.media_type
    await session.rollback()  # nothing to write: do not hold the connection while streaming
    wanted = _range(request.headers.get("range"), size)
    start, end = wanted or (0, size)
    store = blob_store_for(services(request).settings.storage)
    stream = store.open(key, start=start, end=end)
    first = await anext(stream, b"")  # a missing object or outage answers an error, not a cut 200

    async def body() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for piece in stream:
            yield piece

    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start)}
    if wanted:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return StreamingResponse(body(), status_code=206 if wanted else 200, media_type=media_type or "application/octet-stream",
                             headers=headers)


@router.get("/api/recordings/{recording_id}/analysis", response_model=AnalysisOut)
async def get_analysis(recording_id: str, session: AsyncSession = Depends(db_session, scope="function"),
                       who: Principal = Depends(auth.reader)) -> AnalysisOut:
    """The transcript (with timed segments), summary, sentiment, topics and action items.
    404 `analysis_not_ready` until the recording is analyzed."""
    repo = RecordingRepository(session)
    await repo.get(who.organization_id, recording_id)
    found = await repo.analysis(who.organization_id, recording_id)
    if found is None:
        raise NotFound("The recording has not been analysed yet; see /api/status/{recordingId}.", code="analysis_not_ready")
    return analysis_out(found)


@router.get("/api/status/{recording_id}", response_model=StatusOut)
async def recording_status(recording_id: str, session: AsyncSession = Depends(db_session, scope="function"),
                           who: Principal = Depends(auth.reader)) -> StatusOut:
    """Processing status and progress (0-100)."""
    return status_out(await RecordingRepository(session).get(who.organization_id, recording_id))


@router.delete("/api/recordings/{recording_id}", status_code=204, response_class=Response)
async def delete_recording(recording_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function"),
                           who: Principal = Depends(auth.reader)) -> Response:
    """Delete the recording, its stored audio and chunks, and free its quota. OWNER / ADMIN,
    API keys, or the uploader."""
    service = _service(request, session)
    row = await service.repo.get(who.organization_id, recording_id)
    auth.check_delete(who, row)
    await service.delete(row)
    return Response(status_code=204)


@router.post("/api/recordings/{recording_id}/reprocess", response_model=RecordingOut)
async def reprocess_recording(recording_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function"),
                              who: Principal = Depends(auth.uploader)) -> RecordingOut:
    """Queue the processing again (e.g. after a top-up when it failed with
    `insufficient_balance`). Segments already transcribed are not paid again."""
    return _out(request, await _service(request, session).reprocess(who, recording_id))

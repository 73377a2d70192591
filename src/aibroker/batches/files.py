"""Files: a multipart upload streamed into blob storage (never whole in memory), with the
size and line limits; the rows that name them, always read through the organization."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from aibroker.batches.ids import new_file_id, storage_key
from aibroker.batches.views import TERMINAL
from aibroker.config import BatchSettings
from aibroker.errors import Conflict, InvalidRequest, NotFound, PayloadTooLarge
from aibroker.kit.clock import utcnow
from aibroker.models import Batch, StoredFile
from aibroker.storage import BlobStore
from aibroker.tenancy.scoped import scoped

# What a client may upload as. `batch_output` files are written by the broker only.
PURPOSES = frozenset({"batch", "user_data", "assistants", "vision", "evals", "fine-tune"})
OUTPUT_PURPOSE = "batch_output"
BATCH_FILE_DAYS = 30  # OpenAI: batch files expire after 30 days by default
COPY_CHUNK = 1024 * 1024
# Room for the multipart framing and the small fields around the file itself.
FORM_SLACK_BYTES = 64 * 1024


def file_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is larger than the limit of {limit} bytes (AIBROKER_MAX_FILE_BYTES).",
                           code="file_too_large", param="file")


class LineCounter:
    """Counts the non-blank lines of a stream of chunks (a JSONL file's requests)."""

    def __init__(self) -> None:
        self.lines = 0
        self._open = False  # the current line has a non-blank byte

    def feed(self, chunk: bytes) -> None:
        pieces = chunk.split(b"\n")
        for i, piece in enumerate(pieces):
            if piece.strip():
                self._open = True
            if i < len(pieces) - 1:  # a newline ended this piece
                self.lines += self._open
                self._open = False

    def finish(self) -> int:
        return self.lines + self._open


async def _counted(request: Request, limit: int) -> AsyncIterator[bytes]:
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise PayloadTooLarge(f"The request body is larger than {limit} bytes.", code="file_too_large", param="file")
            yield chunk
    except ClientDisconnect:
        raise InvalidRequest("The client closed the connection before sending the whole file.", code="client_disconnected") from None


async def parse_upload(request: Request, settings: BatchSettings) -> tuple[UploadFile, str]:
    """(the file part, spooled to a temporary file past 1 MiB; the purpose). 413 past the limit."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest("Send the file as multipart/form-data with the fields 'file' and 'purpose'.", code="invalid_content_type")
    limit = settings.max_file_bytes + FORM_SLACK_BYTES
    declared = (request.headers.get("content-length") or "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise file_too_large(settings.max_file_bytes)  # refused before a byte of it is read
    parser = MultiPartParser(request.headers, _counted(request, limit), max_files=1, max_fields=8)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"The multipart body is malformed: {exc.message}", code="invalid_multipart") from None
    upload, purpose = form.get("file"), form.get("purpose")
    if not isinstance(upload, UploadFile):
        await form.close()
        raise InvalidRequest("'file' is required (a file part).", param="file", code="missing_required_parameter")
    if not isinstance(purpose, str) or purpose not in PURPOSES:
        await form.close()
        raise InvalidRequest(f"'purpose' must be one of {', '.join(sorted(PURPOSES))}.", param="purpose", code="invalid_value")
    return upload, purpose


async def store_upload(session: AsyncSession, store: BlobStore, settings: BatchSettings, organization_id: str,
                       upload: UploadFile, purpose: str) -> StoredFile:
    """Copy the spooled part into storage chunk by chunk, counting bytes (413) and, for a batch
    input, its lines (400 past AIBROKER_BATCH_MAX_LINES), then add its row."""
    file_id = new_file_id()
    key = storage_key(organization_id, file_id)
    counter = LineCounter() if purpose == "batch" else None
    max_bytes, max_lines = settings.max_file_bytes, settings.batch_max_lines

    async def chunks() -> AsyncIterator[bytes]:
        size = 0
        while chunk := await upload.read(COPY_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise file_too_large(max_bytes)
            if counter is not None:
                counter.feed(chunk)
                if counter.lines > max_lines:
                    raise _too_many_lines(max_lines)
            yield chunk

    try:
        blob = await store.put(key, chunks(), content_type="application/jsonl" if counter else "application/octet-stream")
    finally:
        await upload.close()
    lines = counter.finish() if counter is not None else None
    if lines is not None and lines > max_lines:
        await store.delete(key)
        raise _too_many_lines(max_lines)
    now = utcnow()
    row = StoredFile(
        id=file_id, organization_id=organization_id, purpose=purpose, filename=_filename(upload.filename),
        bytes=blob.size, storage_key=key, sha256=blob.sha256, line_count=lines, created_at=now,
        expires_at=now + dt.timedelta(days=BATCH_FILE_DAYS) if purpose == "batch" else None,
    )
    session.add(row)
    await session.flush()
    return row


def _too_many_lines(limit: int) -> InvalidRequest:
    return InvalidRequest(f"A batch input file holds at most {limit} requests (lines).", param="file", code="too_many_lines")


def _filename(name: str | None) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return (name or "upload.jsonl")[:255]


async def get_file(session: AsyncSession, organization_id: str, file_id: str) -> StoredFile:
    """The organization's file; 404 for an unknown id or another organization's."""
    row = await session.scalar(scoped(StoredFile, organization_id).where(StoredFile.id == file_id))
    if row is None:
        raise NotFound(f"No such File object: {file_id}", param="file_id", code="file_not_found")
    return row


async def list_files(session: AsyncSession, organization_id: str, *, purpose: str | None, limit: int,
                     after: str | None, order: str) -> tuple[list[StoredFile], bool]:
    stmt = scoped(StoredFile, organization_id)
    if purpose:
        stmt = stmt.where(StoredFile.purpose == purpose)
    if after:  # ids sort by creation time: the cursor is the id itself
        stmt = stmt.where(StoredFile.id > after if order == "asc" else StoredFile.id < after)
    stmt = stmt.order_by(StoredFile.id.asc() if order == "asc" else StoredFile.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    return rows[:limit], len(rows) > limit


async def delete_file(session: AsyncSession, store: BlobStore, organization_id: str, file_id: str) -> None:
    """Delete the row, then the bytes. The input of a batch still running cannot be deleted (409)."""
    row = await get_file(session, organization_id, file_id)
    running = await session.scalar(
        scoped(Batch, organization_id, Batch.id).where(Batch.input_file_id == file_id, Batch.status.not_in(TERMINAL)).limit(1)
    )
    if running is not None:
        raise Conflict(f"File {file_id} is the input of batch {running}, which is still running.", param="file_id", code="file_in_use")
    await session.delete(row)
    await session.flush()
    await store.delete(row.storage_key)



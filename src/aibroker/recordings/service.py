"""Uploads: create, chunks, finalize, direct upload; delete and reprocess. Services take a
session and never commit (the request owns the transaction); blob writes happen before the
rows that point at them, and a blob is removed only after nothing points at it.

Storage use: a chunk counts against the quota from the moment it is stored; the assembled
file replaces its chunks (same bytes), so a recording's `stored_bytes` is what it holds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import Conflict, InvalidRequest, PayloadTooLarge
from aibroker.jobs import enqueue
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Recording
from aibroker.recordings import audio, quota
from aibroker.recordings.repository import RecordingRepository
from aibroker.recordings.schemas import MAX_CHUNKS, RecordingCreate
from aibroker.storage.base import BlobStore, StoredBlob, as_chunks
from aibroker.tenancy.auth import Principal

PROCESS_JOB = "recordings.process"
PROCESS_PRIORITY = 1
REPROCESSABLE = ("analyzed", "failed")


def prefix_of(organization_id: str, recording_id: str) -> str:
    return f"{organization_id}/recordings/{recording_id}/"


def audio_key(organization_id: str, recording_id: str) -> str:
    return prefix_of(organization_id, recording_id) + "audio"


async def capped(stream: AsyncIterable[bytes], limit: int, what: str = "chunk") -> AsyncIterator[bytes]:
    """The stream, stopped with 413 at the first byte past `limit` (the put then keeps nothing)."""
    seen = 0
    async for piece in stream:
        seen += len(piece)
        if seen > limit:
            raise PayloadTooLarge(f"The {what} is larger than the {limit} bytes allowed.", code="body_too_large")
        yield piece


@dataclass(slots=True)
class ChunkSaved:
    index: int
    size: int
    sha256: str
    received: int
    stale_key: str | None  # the replaced chunk's blob: remove it after the commit


class RecordingService:
    def __init__(self, session: AsyncSession, store: BlobStore, *, max_chunk_bytes: int) -> None:
        self.session = session
        self.store = store
        self.max_chunk_bytes = max_chunk_bytes
        self.repo = RecordingRepository(session)

    async def create(self, principal: Principal, body: RecordingCreate) -> Recording:
        """403 plan_limit_max_recordings at the plan's count; 413 when a declared size cannot fit."""
        limits = await quota.limits_for(self.session, principal.plan)
        if body.total_bytes:
            await quota.check_room(self.session, principal.organization_id, limits, body.total_bytes)
        await quota.take_recording(self.session, principal.organization_id, limits)
        row = Recording(
            id=new_id("rec"), organization_id=principal.organization_id, user_id=principal.user_id,
            title=(body.title or "").strip(), status="uploading", content_type=body.content_type,
            expected_bytes=body.total_bytes, expected_chunks=body.total_chunks,
            expected_sha256=body.sha256.lower() if body.sha256 else None, stored_bytes=0, chunk_count=0,
            progress=0, segments_total=0, segments_done=0, cost_micros=0, created_at=utcnow(), updated_at=utcnow(),
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def uploading(self, principal: Principal, recording_id: str) -> Recording:
        row = await self.repo.get(principal.organization_id, recording_id)
        if row.status != "uploading":
            raise Conflict(f"The recording is {row.status}: its chunks were already assembled.", code="recording_not_uploading")
        return row

    def check_index(self, row: Recording, index: int) -> None:
        top = row.expected_chunks or MAX_CHUNKS
        if not 0 <= index < top:
            raise InvalidRequest(f"x-chunk-index must be between 0 and {top - 1}.", param="x-chunk-index",
                                 code="chunk_index_out_of_range")

    async def put_chunk(
        self, principal: Principal, row: Recording, index: int, body: AsyncIterable[bytes], sha256: str | None,
    ) -> ChunkSaved:
        """Store the chunk (streamed, capped at the maximum chunk size), then count it. The same
        bytes sent again for an index change nothing; other bytes replace the chunk."""
        key = f"{prefix_of(row.organization_id, row.id)}chunks/{index:05d}-{uuid.uuid4().hex[:12]}"
        blob = await self.store.put(key, capped(body, self.max_chunk_bytes))
        try:
            if blob.size == 0:
                raise InvalidRequest("The chunk is empty.", code="empty_chunk")
            if sha256 and sha256.lower() != blob.sha256:
                raise InvalidRequest("The chunk's SHA-256 does not match x-chunk-sha256: send it again.",
                                     param="x-chunk-sha256", code="chunk_checksum_mismatch")
            existing = await self.repo.chunk(row.id, index)
            if existing is not None and existing.sha256 == blob.sha256 and await self.store.size(existing.storage_key) is not None:
                await self.store.delete(key)  # a replay: the chunk is already in
                return ChunkSaved(index, existing.size_bytes, existing.sha256, len(await self.repo.chunks(row.id)), None)
            limits = await quota.limits_for(self.session, principal.plan)
            delta = blob.size - (existing.size_bytes if existing else 0)
            await quota.take_bytes(self.session, row.organization_id, limits, delta)
            await self.repo.save_chunk({"recording_id": row.id, "index": index, "organization_id": row.organization_id,
                                        "size_bytes": blob.size, "sha256": blob.sha256, "storage_key": key})
            received = len(await self.repo.chunks(row.id))
            locked = await self.repo.get(row.organization_id, row.id, lock=True)
            locked.stored_bytes += delta
            locked.chunk_count = received
            locked.updated_at = utcnow()
            await self.session.flush()
        except BaseException:
            await asyncio.shield(self.store.delete(key))
            raise
        return ChunkSaved(index, blob.size, blob.sha256, received, existing.storage_key if existing else None)

    async def finalize(self, principal: Principal, recording_id: str) -> tuple[Recording, bool]:
        """Assemble the chunks (streamed by the store), check size and checksum, probe, enqueue.
        (recording, whether this call finalized it): a second finalize answers the recording."""
        row = await self.repo.get(principal.organization_id, recording_id)
        if row.status != "uploading":
            return row, False
        chunks = await self.repo.chunks(row.id)
        expected = row.expected_chunks or ((chunks[-1].index + 1) if chunks else 1)
        have = {c.index for c in chunks}
        missing = [i for i in range(expected) if i not in have]
        if missing:
            raise Conflict(f"{len(missing)} chunk(s) are missing: upload them, then finalize again.",
                           code="missing_chunks", extra={"missing_chunks": missing})
        total = sum(c.size_bytes for c in chunks)
        if row.expected_bytes is not None and total != row.expected_bytes:
            raise InvalidRequest(f"The chunks hold {total} bytes, not the {row.expected_bytes} declared.", code="size_mismatch")
        key = audio_key(row.organization_id, row.id)
        blob = await self.store.compose(key, [c.storage_key for c in chunks], content_type=row.content_type)
        try:
            await self._accept(row, blob)
        except BaseException:
            await asyncio.shield(self.store.delete(key))
            raise
        won = await self.repo.claim_status(
            row.organization_id, row.id, ("uploading",), "uploaded", storage_key=key, size_bytes=blob.size,
            sha256=blob.sha256, media_type=row.media_type, codec=row.codec, duration_ms=row.duration_ms,
            uploaded_at=utcnow(), chunk_count=len(chunks), job_id=None,
        )
        if not won:  # another finalize of the same recording got there first (same bytes)
            await self.session.refresh(row)
            return row, False
        await self.repo.drop_chunks(row.id)
        await self._enqueue(row)
        await self.session.refresh(row)
        return row, True

    async def _accept(self, row: Recording, blob: StoredBlob) -> None:
        if row.expected_sha256 and row.expected_sha256 != blob.sha256:
            raise InvalidRequest("The assembled file's SHA-256 does not match the one declared.", code="checksum_mismatch")
        loop = asyncio.get_running_loop()
        source = audio.BlobFile(self.store, blob.key, blob.size, loop)
        try:
            found = await asyncio.to_thread(audio.probe, source)
        except audio.MediaProblem as exc:
            raise InvalidRequest(exc.message, code="unsupported_media") from None
        row.media_type, row.codec = found.media_type, found.codec
        row.duration_ms = round(found.duration_seconds * 1000) if found.duration_seconds else None

    async def _enqueue(self, row: Recording) -> None:
        job_id = await enqueue(self.session, PROCESS_JOB, {"recording_id": row.id}, organization_id=row.organization_id,
                               priority=PROCESS_PRIORITY, max_attempts=8)
        await self.repo.claim_status(row.organization_id, row.id, (row.status, "uploaded"), "uploaded", job_id=job_id)

    async def upload(self, principal: Principal, stream: AsyncIterable[bytes], *, title: str | None,
                     content_type: str | None, limit: int) -> Recording:
        """POST /api/upload: create, store the whole file as the recording's audio, probe, enqueue."""
        row = await self.create(principal, RecordingCreate(title=title, content_type=content_type))
        key = audio_key(row.organization_id, row.id)
        blob = await self.store.put(key, capped(stream, limit, "file"), content_type=content_type)
        try:
            if blob.size == 0:
                raise InvalidRequest("The file is empty.", param="file", code="empty_file")
            limits = await quota.limits_for(self.session, principal.plan)
            await quota.take_bytes(self.session, row.organization_id, limits, blob.size)
            await self._accept(row, blob)
        except BaseException:
            await asyncio.shield(self.store.delete(key))
            raise
        row.stored_bytes, row.storage_key, row.size_bytes, row.sha256 = blob.size, key, blob.size, blob.sha256
        row.status, row.uploaded_at, row.chunk_count = "uploaded", utcnow(), 1
        await self.session.flush()
        await self._enqueue(row)
        await self.session.refresh(row)
        return row

    async def store_recording(self, principal: Principal, data: bytes | AsyncIterable[bytes], *, title: str | None = None,
                              content_type: str | None = None, limit: int = 2**40) -> Recording:
        """A recording from audio another domain already holds (a voice session saving its
        audio): the same path as POST /api/upload (quotas, probe, processing job). The caller's
        session commits it."""
        return await self.upload(principal, as_chunks(data), title=title, content_type=content_type, limit=limit)

    async def delete(self, row: Recording) -> None:
        """The stored objects first (a storage outage is a 503 with nothing changed; deleting
        again finishes), then the rows, and the quota is freed."""
        await self.store.delete_prefix(prefix_of(row.organization_id, row.id))
        await quota.release(self.session, row.organization_id, stored_bytes=row.stored_bytes, recordings=1)
        await self.session.delete(row)
        await self.session.flush()

    async def reprocess(self, principal: Principal, recording_id: str) -> Recording:
        """Run the processing again (after a top-up, or for a fresh analysis). Segments already
        transcribed are kept: they were paid for once and are not paid again."""
        row = await self.repo.get(principal.organization_id, recording_id)
        if row.status not in REPROCESSABLE:
            raise Conflict(f"The recording is {row.status}; only analyzed or failed recordings are reprocessed.",
                           code="recording_not_reprocessable")
        if not row.storage_key:
            raise Conflict("The recording has no assembled audio yet: finalize it first.", code="recording_not_uploaded")
        won = await self.repo.claim_status(row.organization_id, row.id, (row.status,), "uploaded",
                                           failure_code=None, failure_message=None, progress=0, processed_at=None)
        if not won:
            raise Conflict("The recording changed meanwhile; try again.", code="recording_busy")
        await self._enqueue(row)
        await self.session.refresh(row)
        return row

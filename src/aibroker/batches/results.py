"""A batch's end: the lines never run get their error (batch_expired / batch_cancelled), the
output and error files are written (JSONL, one object per line, OpenAI's shape) and the batch
takes its terminal status, its files and its counts in one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.batches import jsonl, repository
from aibroker.batches.files import OUTPUT_PURPOSE
from aibroker.batches.ids import result_file_id, storage_key
from aibroker.batches.lines import write_line_outcome
from aibroker.db import upsert_insert
from aibroker.kit.clock import utcnow
from aibroker.models import Batch, BatchLine, StoredFile
from aibroker.storage import BlobStore

PAGE = 500
NEVER_RUN = {
    "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
    "cancelled": ("batch_cancelled", "This request was not executed because the batch was cancelled."),
}
OUTPUT_OBJECT_DAYS = 30


def output_line(row: BatchLine) -> dict[str, Any]:
    if row.status_code is None:  # never run
        return {"id": row.id, "custom_id": row.custom_id, "response": None, "error": row.error}
    return {"id": row.id, "custom_id": row.custom_id,
            "response": {"status_code": row.status_code, "request_id": row.request_id, "body": row.body}, "error": None}


async def _mark_never_run(sessions: async_sessionmaker[AsyncSession], store: BlobStore, batch: Batch, input_key: str,
                          status: str) -> None:
    code, message = NEVER_RUN[status]
    async with sessions() as session:
        done = await repository.done_indexes(session, batch.id)
    pending = 0
    session = sessions()
    try:
        async for line in jsonl.lines(store, input_key):
            if line.index in done:
                continue
            await write_line_outcome(session, batch.id, line, None, None, None, {"code": code, "message": message})
            pending += 1
            if pending >= PAGE:
                await session.commit()
                pending = 0
        await session.commit()
    finally:
        await session.close()


async def _jsonl_of(sessions: async_sessionmaker[AsyncSession], batch_id: str, ok: bool) -> AsyncIterator[bytes]:
    after = -1
    while True:
        async with sessions() as session:
            rows = await repository.lines_page(session, batch_id, ok=ok, after=after, limit=PAGE)
        if not rows:
            return
        yield b"".join(orjson.dumps(output_line(r)) + b"\n" for r in rows)
        after = rows[-1].line_index


async def _write_file(sessions: async_sessionmaker[AsyncSession], store: BlobStore, batch: Batch, kind: str,
                      ok: bool) -> dict[str, Any] | None:
    """The output ("o") or error ("e") file as a row to insert, or None when it would be empty."""
    file_id = result_file_id(batch.id, kind)
    key = storage_key(batch.organization_id, file_id)
    blob = await store.put(key, _jsonl_of(sessions, batch.id, ok), content_type="application/jsonl")
    if blob.size == 0:
        await store.delete(key)
        return None
    now = utcnow()
    name = "batch_output.jsonl" if ok else "batch_errors.jsonl"
    return {"id": file_id, "organization_id": batch.organization_id, "purpose": OUTPUT_PURPOSE, "filename": f"{batch.id}_{name}",
            "bytes": blob.size, "storage_key": key, "sha256": blob.sha256, "line_count": None, "created_at": now,
            "expires_at": now + dt.timedelta(days=OUTPUT_OBJECT_DAYS)}


async def finish(sessions: async_sessionmaker[AsyncSession], writes: async_sessionmaker[AsyncSession], store: BlobStore,
                 batch: Batch, input_key: str, status: str) -> None:
    """End `batch` as `status` (completed | expired | cancelled). Safe to run again after a crash
    part way: never-run rows are kept once, the files are rewritten under the same ids."""
    if status in NEVER_RUN and batch.in_progress_at is not None:  # a batch cancelled while validating ran nothing
        await _mark_never_run(writes, store, batch, input_key, status)
    output = await _write_file(sessions, store, batch, "o", True)
    errors = await _write_file(sessions, store, batch, "e", False)
    now = utcnow()
    async with writes() as session:
        for row in (output, errors):
            if row is not None:
                await session.execute(upsert_insert(session, StoredFile).values(**row).on_conflict_do_nothing())
        counts = (await repository.line_counts(session, [batch.id])).get(batch.id, (0, 0))
        stamp = {"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[status]
        await repository.set_fields(
            session, batch.id, status=status, output_file_id=output["id"] if output else None,
            error_file_id=errors["id"] if errors else None, completed=counts[0], failed=counts[1],
            usage=await repository.usage_totals(session, batch.id), **{stamp: now},
        )
        await session.commit()

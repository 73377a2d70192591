"""OpenAI's Files and Batch APIs: /v1/files and /v1/batches, scoped to the caller's
organization (another organization's id is a 404), with API-key auth like every /v1 route."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aibroker.batches import files, repository
from aibroker.batches.ids import new_batch_id
from aibroker.batches.lines import creator_of
from aibroker.batches.schemas import FILE_UPLOAD_BODY, BatchCreate
from aibroker.batches.store import blob_store
from aibroker.batches.tasks import enqueue_run
from aibroker.batches.views import TERMINAL, batch_object, file_object, page
from aibroker.errors import Conflict, InvalidRequest, NotFound
from aibroker.gateway.formats.schemas import openapi_body
from aibroker.gateway.http import JSONResponse, authenticate, read_json, services, validate
from aibroker.kit.clock import utcnow
from aibroker.models import Batch

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible: files and batches"])

WINDOW = dt.timedelta(hours=24)


@router.post("/files", openapi_extra=FILE_UPLOAD_BODY)
async def upload_file(request: Request) -> Response:
    """Upload a file (multipart `file` + `purpose`). A `batch` file is JSONL with at most
    AIBROKER_BATCH_MAX_LINES requests (400 `too_many_lines`); any file is at most
    AIBROKER_MAX_FILE_BYTES (413 `file_too_large`). Stored in the broker's blob storage,
    streamed, under the organization. Its lines are checked when a batch is created on it."""
    principal = await authenticate(request)
    svc = services(request)
    upload, purpose = await files.parse_upload(request, svc.settings.batches)
    async with svc.db.sessions() as session:
        row = await files.store_upload(session, blob_store(svc), svc.settings.batches, principal.organization_id, upload, purpose)
        await session.commit()
    return JSONResponse(file_object(row))


@router.get("/files")
async def list_files(
    request: Request,
    purpose: str | None = Query(default=None, max_length=40, description="Only files of this purpose."),
    limit: int = Query(default=10_000, ge=1, le=10_000),
    after: str | None = Query(default=None, max_length=100, description="A file id: the files after it in this order."),
    order: Literal["asc", "desc"] = Query(default="desc", description="By creation time."),
) -> Response:
    """The organization's files, newest first unless `order=asc`."""
    principal = await authenticate(request)
    async with services(request).db.sessions() as session:
        rows, more = await files.list_files(session, principal.organization_id, purpose=purpose, limit=limit, after=after, order=order)
    return JSONResponse(page([file_object(r) for r in rows], more))


@router.get("/files/{file_id}")
async def get_file(file_id: str, request: Request) -> Response:
    """One file's metadata."""
    principal = await authenticate(request)
    async with services(request).db.sessions() as session:
        row = await files.get_file(session, principal.organization_id, file_id)
    return JSONResponse(file_object(row))


@router.get("/files/{file_id}/content", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def file_content(file_id: str, request: Request) -> Response:
    """The file's bytes, streamed (a batch's output and error files are JSONL)."""
    principal = await authenticate(request)
    svc = services(request)
    async with svc.db.sessions() as session:
        row = await files.get_file(session, principal.organization_id, file_id)
    store = blob_store(svc)
    if await store.size(row.storage_key) is None:
        raise NotFound(f"The content of file {file_id} is no longer stored.", code="file_not_found")
    headers = {"content-length": str(row.bytes), "content-disposition": f'attachment; filename="{row.filename.replace(chr(34), "")}"'}
    return StreamingResponse(store.open(row.storage_key), media_type="application/octet-stream", headers=headers)


@router.delete("/files/{file_id}")
async def delete_file(file_id: str, request: Request) -> Response:
    """Delete a file and its stored bytes."""
    principal = await authenticate(request)
    svc = services(request)
    async with svc.db.sessions() as session:
        await files.delete_file(session, blob_store(svc), principal.organization_id, file_id)
        await session.commit()
    return JSONResponse({"id": file_id, "object": "file", "deleted": True})


@router.post("/batches", openapi_extra=openapi_body(BatchCreate))
async def create_batch(request: Request) -> Response:
    """Create a batch over an uploaded `batch` file. It is `validating` until a worker (or
    `POST /api/jobs/process`) checks every line, then `in_progress` while the lines run on
    the job queue through the gateway, each routed, held, billed and recorded like a live
    request (the usage record names the batch and the line's `custom_id`), with the plan's
    batch discount off the charge; then `finalizing` and `completed` with an output file
    (and an error file for failed lines)."""
    principal = await authenticate(request)
    body = validate(BatchCreate, await read_json(request))
    svc = services(request)
    async with svc.db.sessions() as session:
        source = await files.get_file(session, principal.organization_id, body.input_file_id)
        if source.purpose != "batch":
            raise InvalidRequest(f"File {source.id} has purpose '{source.purpose}'; a batch reads a file uploaded with purpose 'batch'.",
                                 param="input_file_id", code="invalid_file_purpose")
        now = utcnow()
        batch = Batch(
            id=new_batch_id(), organization_id=principal.organization_id, endpoint=body.endpoint, input_file_id=source.id,
            completion_window=body.completion_window, status="validating", metadata_=body.metadata,
            creator=creator_of(principal), total=0, completed=0, failed=0, created_at=now, expires_at=now + WINDOW,
        )
        session.add(batch)
        await session.flush()
        await enqueue_run(session, batch)  # in this transaction: the job exists exactly when the batch does
        await session.commit()
    return JSONResponse(batch_object(batch))


@router.get("/batches")
async def list_batches(
    request: Request,
    limit: int = Query(default=20, ge=1, le=100),
    after: str | None = Query(default=None, max_length=100, description="A batch id: the batches created before it."),
) -> Response:
    """The organization's batches, newest first."""
    principal = await authenticate(request)
    async with services(request).db.sessions() as session:
        rows, more = await repository.list_batches(session, principal.organization_id, limit=limit, after=after)
        counts = await repository.line_counts(session, [r.id for r in rows if r.status not in TERMINAL])
    return JSONResponse(page([batch_object(r, counts.get(r.id, (0, 0))) for r in rows], more))


@router.get("/batches/{batch_id}")
async def get_batch(batch_id: str, request: Request) -> Response:
    """One batch: its status, timestamps, `request_counts` (exact, counted from the lines'
    results), output and error files."""
    principal = await authenticate(request)
    async with services(request).db.sessions() as session:
        row = await repository.get_batch(session, principal.organization_id, batch_id)
        counts = await repository.line_counts(session, [row.id])
    return JSONResponse(batch_object(row, counts.get(row.id, (0, 0))))


@router.post("/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, request: Request) -> Response:
    """Cancel a batch: `cancelling` at once; its job stops starting lines, lines in flight
    finish, and it ends `cancelled` with the finished lines in the output file and the others
    as `batch_cancelled` in the error file. A finished batch cannot be cancelled (409)."""
    principal = await authenticate(request)
    svc = services(request)
    async with svc.db.sessions() as session:
        row = await repository.get_batch(session, principal.organization_id, batch_id)
        if row.status in TERMINAL:
            raise Conflict(f"Batch {batch_id} is {row.status}; only a running batch can be cancelled.", code="batch_not_cancellable")
        if row.status != "cancelling":
            changed = await repository.set_fields(session, row.id, only_from=("validating", "in_progress", "finalizing"),
                                                  status="cancelling", cancelling_at=utcnow())
            await session.commit()
            if not changed:  # it finished meanwhile
                await session.refresh(row)
                if row.status in TERMINAL:
                    raise Conflict(f"Batch {batch_id} is {row.status}; only a running batch can be cancelled.", code="batch_not_cancellable")
        await session.refresh(row)
        counts = await repository.line_counts(session, [row.id])
    return JSONResponse(batch_object(row, counts.get(row.id, (0, 0))))

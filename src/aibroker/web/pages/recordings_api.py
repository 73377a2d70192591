"""The recordings page's fetch endpoints (/console/api/recordings): a chunked upload
(create, chunks, finalize) and the statuses the list refreshes from. Cookie + CSRF header;
each calls the recordings API's own route function with the member as the caller, so
quotas, checksums, probing and the processing job are exactly the API's."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from aibroker.deps import db_session
from aibroker.errors import NotFound
from aibroker.gateway.http import JSONResponse, read_json, validate
from aibroker.recordings import endpoints as recording_api
from aibroker.recordings.repository import RecordingRepository
from aibroker.recordings.schemas import RecordingCreate, recording_out
from aibroker.tenancy.roles import Permission
from aibroker.web.auth import ConsoleUser, action, page
from aibroker.web.pages.ai_caller import principal_of
from aibroker.web.pages.recordings import API, _max_chunk

router = APIRouter()
MAX_IDS = 50
_session = Depends(db_session, scope="function")
_use_action = action(Permission.USE_AI_BROKER)


def _json(model: object, status: int = 200) -> Response:
    return JSONResponse(model.model_dump(mode="json"), status_code=status)  # type: ignore[attr-defined]


@router.post(API)
async def create_upload(request: Request, user: ConsoleUser = Depends(_use_action), session: AsyncSession = _session) -> Response:
    """Create a recording to upload in chunks (`{"title", "content_type", "total_bytes", "total_chunks"}`)."""
    body = validate(RecordingCreate, await read_json(request))
    return _json(await recording_api.create_recording(body, request, session, principal_of(user)), 201)


@router.post(API + "/{recording_id}/chunks/{index}")
async def upload_chunk(recording_id: str, index: int, request: Request, user: ConsoleUser = Depends(_use_action),
                       session: AsyncSession = _session) -> Response:
    """One chunk as the raw body (streamed to storage); idempotent per index."""
    saved = await recording_api.upload_chunk(recording_id[:60], request, x_chunk_index=str(index), x_chunk_sha256=None,
                                             session=session, who=principal_of(user))
    return _json(saved)


@router.post(API + "/{recording_id}/finalize")
async def finalize_upload(recording_id: str, request: Request, user: ConsoleUser = Depends(_use_action),
                          session: AsyncSession = _session) -> Response:
    """Assemble the chunks, probe the audio and queue its processing."""
    done = await recording_api.finalize_recording(recording_id[:60], request, Response(), session, principal_of(user))
    return _json(done)


@router.get(API + "/statuses")
async def statuses(request: Request, ids: str = Query(max_length=MAX_IDS * 61),
                   user: ConsoleUser = Depends(page(Permission.USE_AI_BROKER)), session: AsyncSession = _session) -> Response:
    """The listed recordings as they are now (ids of another organization are left out)."""
    repo = RecordingRepository(session)
    found = []
    for recording_id in [i for i in ids.split(",") if i][:MAX_IDS]:
        try:
            found.append(recording_out(await repo.get(user.organization_id, recording_id[:60]), max_chunk_bytes=_max_chunk(request)))
        except NotFound:
            continue
    return JSONResponse({"object": "list", "data": [r.model_dump(mode="json") for r in found]})

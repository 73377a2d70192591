"""/console/recordings: upload a recording with a progress bar, the organization's
recordings with their status updating without a reload, and one recording's transcript and
analysis. Through the recordings service and repository, as /api/recordings; the upload's
fetch endpoints are in recordings_api. Reading needs USE_AI_BROKER or VIEW_USAGE (as the
API); deleting is for OWNER / ADMIN or the member who uploaded it."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aibroker.deps import db_session
from aibroker.errors import InvalidRequest, PermissionDenied
from aibroker.gateway.http import services
from aibroker.recordings import auth as recording_auth
from aibroker.recordings import endpoints as recording_api
from aibroker.recordings.repository import RecordingRepository
from aibroker.recordings.schemas import analysis_out, recording_out
from aibroker.recordings.service import RecordingService
from aibroker.storage import blob_store_for
from aibroker.tenancy.roles import Permission
from aibroker.web.auth import ConsoleUser, action, page
from aibroker.web.flash import flash
from aibroker.web.nav import NavEntry
from aibroker.web.pages.ai_caller import principal_of
from aibroker.web.render import render

router = APIRouter()
NAV = [NavEntry("Recordings", "/console/recordings", Permission.USE_AI_BROKER)]
BASE = "/console/recordings"
API = "/console/api/recordings"
PAGE_SIZE = 50
POLL_MS = 2000
_session = Depends(db_session, scope="function")
_read_page = page(Permission.USE_AI_BROKER)
_use_action = action(Permission.USE_AI_BROKER)


def _max_chunk(request: Request) -> int:
    return int(services(request).settings.storage.max_chunk_bytes)


def _service(request: Request, session: AsyncSession) -> RecordingService:
    return RecordingService(session, blob_store_for(services(request).settings.storage), max_chunk_bytes=_max_chunk(request))


@router.get(BASE)
async def recordings_page(request: Request, user: ConsoleUser = Depends(_read_page), session: AsyncSession = _session) -> Response:
    """The upload form and the organization's recordings, newest first (`?before=` pages on)."""
    before = request.query_params.get("before") or None
    if before is not None and len(before) > 60:
        raise InvalidRequest("'before' is a recording id.", param="before")
    rows = await RecordingRepository(session).page(user.organization_id, limit=PAGE_SIZE, before_id=before, status=None,
                                                   user_id=None, created_from=None, created_to=None, text=None)
    recordings = [recording_out(r, max_chunk_bytes=_max_chunk(request)) for r in rows]
    return render(request, "recordings.html", title="Recordings", recordings=recordings, api=API, base=BASE,
                  chunk_bytes=_max_chunk(request), poll_ms=POLL_MS,
                  next_before=rows[-1].id if len(rows) == PAGE_SIZE else None)


@router.get(BASE + "/{recording_id}")
async def recording_page(recording_id: str, request: Request, user: ConsoleUser = Depends(_read_page),
                         session: AsyncSession = _session) -> Response:
    """One recording: its status, the audio, and once analyzed the transcript (timed
    segments), summary, sentiment, topics and action items. Another organization's: 404."""
    repo = RecordingRepository(session)
    row = await repo.get(user.organization_id, recording_id[:60])
    found = await repo.analysis(user.organization_id, row.id)
    who = principal_of(user)
    may_delete = True
    try:
        recording_auth.check_delete(who, row)
    except PermissionDenied:  # the button is not offered (the route refuses too)
        may_delete = False
    return render(request, "recording.html", title=row.title or row.id, recording=recording_out(row, max_chunk_bytes=_max_chunk(request)),
                  analysis=analysis_out(found) if found is not None else None, api=API, base=BASE, poll_ms=POLL_MS,
                  may_delete=may_delete)


@router.get(BASE + "/{recording_id}/audio")
async def recording_audio(recording_id: str, request: Request, user: ConsoleUser = Depends(_read_page),
                          session: AsyncSession = _session) -> Response:
    """The recording's audio for the page's player (HTTP Range, as the API's download)."""
    return await recording_api.download_audio(recording_id[:60], request, session, principal_of(user))


@router.post(BASE + "/{recording_id}/delete")
async def delete_recording(recording_id: str, request: Request, user: ConsoleUser = Depends(_use_action),
                           session: AsyncSession = _session) -> Response:
    """Delete the recording, its audio and analysis (OWNER / ADMIN, or its uploader: else 403)."""
    service = _service(request, session)
    row = await service.repo.get(user.organization_id, recording_id[:60])
    recording_auth.check_delete(principal_of(user), row)
    title = row.title or row.id
    await service.delete(row)
    await session.commit()
    return flash(request, RedirectResponse(BASE, status_code=303), f"Recording “{title}” deleted.")


@router.post(BASE + "/{recording_id}/reprocess")
async def reprocess_recording(recording_id: str, request: Request, user: ConsoleUser = Depends(_use_action),
                              session: AsyncSession = _session) -> Response:
    """Queue the processing again (e.g. after a top-up, when it failed for the balance)."""
    row = await _service(request, session).reprocess(principal_of(user), recording_id[:60])
    await session.commit()
    return flash(request, RedirectResponse(f"{BASE}/{row.id}", status_code=303), "Queued for processing again.")

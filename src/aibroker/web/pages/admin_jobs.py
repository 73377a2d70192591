"""Platform page: the job queue and its dead letters (failed jobs), with retry, through the
queue functions that /api/admin/jobs uses."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from aibroker.jobs import queue
from aibroker.models import Job
from aibroker.web.pages import admin_common as common

router = APIRouter(prefix="/console/admin/jobs", include_in_schema=False, dependencies=[Depends(common.super_admin)])
NAV = common.nav("Jobs", "/console/admin/jobs")
STATUSES = (queue.PENDING, queue.PROCESSING, queue.COMPLETED, queue.FAILED)
SHOWN = 100


@router.get("")
async def jobs(request: Request, status: str = "failed", type: str = "", session: AsyncSession = common.SESSION) -> Response:
    """Jobs by status (the dead letters first: status=failed), newest first, with the queue's counts."""
    status = status if status in STATUSES or status == "all" else queue.FAILED
    stmt = select(Job).order_by(Job.created_at.desc()).limit(SHOWN)
    if status != "all":
        stmt = stmt.where(Job.status == status)
    job_type = type.strip()[:80]
    if job_type:
        stmt = stmt.where(Job.type == job_type)
    rows = [queue.job_view(j) for j in await session.scalars(stmt)]
    counts = await queue.counts(session)
    totals = {s: sum(counts.get(s, {}).values()) for s in STATUSES}
    return common.page(request, "admin/jobs.html", title="Jobs", jobs=rows, status=status, type=job_type,
                       statuses=STATUSES, totals=totals, due=await queue.due_count(session), shown=SHOWN)


@router.post("/{job_id}/retry", dependencies=[Depends(common.csrf)])
async def retry(request: Request, job_id: str, session: AsyncSession = common.SESSION) -> Response:
    """Put a dead-lettered job back in the queue with fresh attempts (as POST /api/admin/jobs/{id}/retry):
    404 for an unknown job, 409 for one that is not failed."""
    job = await queue.retry(session, job_id)
    await session.commit()
    return common.redirect(request, "/console/admin/jobs?status=failed", f"Job {job.id} ({job.type}) is queued again.")

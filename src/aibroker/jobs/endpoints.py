"""The cron-style job processor (seed 004: POST /api/jobs/process) and the admin's dead letters."""

from __future__ import annotations

import hmac
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.deps import db_session, require_admin
from aibroker.errors import AuthenticationError
from aibroker.gateway.http import services
from aibroker.jobs import queue
from aibroker.jobs.registry import registered_names
from aibroker.jobs.runner import Worker
from aibroker.models import Job
from aibroker.tenancy.auth import bearer_token

router = APIRouter(tags=["Jobs"])


class ProcessRequest(BaseModel):
    max_jobs: int = Field(default=10, ge=1, le=1000, description="At most this many due jobs run in this call.")
    concurrency: int = Field(default=4, ge=1, le=32, description="Jobs run at the same time within the call.")


async def require_cron(request: Request) -> None:
    """`Authorization: Bearer <CRON_SECRET>` (the platform service key works too)."""
    token = bearer_token(request.headers.get("authorization"))
    svc = services(request)
    secret = svc.settings.messaging.cron_secret
    if token and secret and hmac.compare_digest(token, secret):
        return
    if svc.auth.is_admin_token(token):
        return
    raise AuthenticationError("This route needs 'Authorization: Bearer <CRON_SECRET>'.", code="invalid_cron_secret")


@router.post("/api/jobs/process", dependencies=[Depends(require_cron)])
async def process_jobs(request: Request, body: ProcessRequest | None = None) -> dict[str, Any]:
    """Run up to `max_jobs` due jobs now and report what happened (call it from a cron every 30-60 s)."""
    body = body or ProcessRequest()
    worker = Worker(services(request), concurrency=min(body.concurrency, body.max_jobs), worker_id=None)
    outcome = await worker.run_batch(body.max_jobs)
    async with services(request).db.sessions() as session:
        remaining = await queue.due_count(session)
    return {"processed": sum(outcome.values()), **outcome, "remaining_due": remaining}


@router.get("/api/jobs/process", dependencies=[Depends(require_cron)])
async def queue_status(request: Request) -> dict[str, Any]:
    """The queue by status and type, how many jobs are due now, and the known job types."""
    async with services(request).db.sessions() as session:
        by_status = await queue.counts(session)
        due = await queue.due_count(session)
    totals = {status: sum(types.values()) for status, types in by_status.items()}
    return {"totals": totals, "by_status": by_status, "due": due, "handlers": registered_names()}


@router.get("/api/admin/jobs", dependencies=[Depends(require_admin)])
async def list_jobs(
    status: Literal["pending", "processing", "completed", "failed"] | None = Query(default=None),
    type: str | None = Query(default=None, max_length=80, description="A job type, e.g. messaging.send_whatsapp"),
    limit: int = Query(default=50, ge=1, le=500),
    session: AsyncSession = Depends(db_session, scope="function"),
) -> dict[str, Any]:
    """Platform admin: jobs, newest first (status=failed lists the dead letters)."""
    stmt = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if status:
        stmt = stmt.where(Job.status == status)
    if type:
        stmt = stmt.where(Job.type == type)
    return {"data": [queue.job_view(j) for j in await session.scalars(stmt)]}


@router.post("/api/admin/jobs/{job_id}/retry", dependencies=[Depends(require_admin)])
async def retry_job(job_id: str, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Platform admin: put a failed (dead-lettered) job back in the queue with fresh attempts."""
    job = await queue.retry(session, job_id)
    return queue.job_view(job)

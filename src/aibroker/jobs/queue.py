"""All SQL of the job queue. Functions take a session and never commit.

Claiming is one statement: an UPDATE whose target is chosen by a sub-select. PostgreSQL
adds FOR UPDATE SKIP LOCKED so concurrent workers each take a different row without
waiting; SQLite runs the statement under its single write lock (BEGIN IMMEDIATE).
A claim stamps `locked_by` and a lease; every later write of the worker is conditioned
on still holding it, so a worker that lost its lease can never complete the job.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import Conflict, NotFound
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Job

PENDING, PROCESSING, COMPLETED, FAILED = "pending", "processing", "completed", "failed"
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: str
    type: str
    payload: dict[str, Any]
    organization_id: str | None
    attempts: int
    max_attempts: int


async def enqueue(
    session: AsyncSession,
    type: str,
    payload: dict[str, Any],
    *,
    organization_id: str | None = None,
    priority: int = 0,
    delay_seconds: float = 0,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> str:
    """Add a job in the caller's transaction: it exists only if the caller commits."""
    now = utcnow()
    job = Job(
        id=new_id("job"), type=type, payload=payload, organization_id=organization_id, status=PENDING,
        priority=priority, attempts=0, max_attempts=max_attempts,
        scheduled_for=now + dt.timedelta(seconds=delay_seconds), updated_at=now,
    )
    session.add(job)
    await session.flush()
    return job.id


def _due(now: dt.datetime) -> Any:
    return or_(
        and_(Job.status == PENDING, Job.scheduled_for <= now),
        # A processing job whose worker stopped renewing its lease (crashed) is taken again.
        and_(Job.status == PROCESSING, Job.lease_expires_at < now),
    )


async def claim(
    session: AsyncSession, *, worker_id: str, lease_seconds: float, types: list[str] | None = None
) -> ClaimedJob | None:
    claimed = await claim_many(session, 1, worker_id=worker_id, lease_seconds=lease_seconds, types=types)
    return claimed[0] if claimed else None


async def claim_many(
    session: AsyncSession, limit: int, *, worker_id: str, lease_seconds: float, types: list[str] | None = None
) -> list[ClaimedJob]:
    """Up to `limit` due jobs in one statement (a worker fills all its free slots at once),
    highest priority first, then oldest schedule."""
    now = utcnow()
    pick = select(Job.id).where(_due(now))
    if types:
        pick = pick.where(Job.type.in_(types))
    pick = pick.order_by(Job.priority.desc(), Job.scheduled_for).limit(limit)
    if session.bind.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    # A materialized CTE runs the pick exactly once. Inlined as `id IN (subquery)`, PostgreSQL
    # may run it again per row and, skipping the rows it just locked, claim more than `limit`.
    picked = pick.cte("picked").prefix_with("MATERIALIZED")
    stmt = (
        update(Job)
        .where(Job.id == picked.c.id, _due(now))
        .values(
            status=PROCESSING, attempts=Job.attempts + 1, locked_by=worker_id,
            lease_expires_at=now + dt.timedelta(seconds=lease_seconds), started_at=now, updated_at=now,
        )
        .returning(Job.id, Job.type, Job.payload, Job.organization_id, Job.attempts, Job.max_attempts, Job.priority, Job.scheduled_for)
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(stmt)).all()
    # RETURNING comes in no particular order: run them in the order they were picked.
    rows.sort(key=lambda r: (-r.priority, r.scheduled_for))
    return [ClaimedJob(*row[:6]) for row in rows]


async def heartbeat(session: AsyncSession, job_id: str, worker_id: str, lease_seconds: float) -> bool:
    """Extend the lease; False when this worker no longer holds the job."""
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id, Job.status == PROCESSING)
        .values(lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def complete(session: AsyncSession, job_id: str, worker_id: str, result: dict[str, Any] | None) -> bool:
    now = utcnow()
    outcome = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id, Job.status == PROCESSING)
        .values(status=COMPLETED, completed_at=now, result=result, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return outcome.rowcount == 1  # type: ignore[attr-defined]


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Exponential (base, 2x base, 4x base ...) with up to 10% jitter so retries spread out."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay * (1 + random.random() * 0.1)


async def fail(
    session: AsyncSession, job: ClaimedJob, worker_id: str, error: str, *, final: bool, delay_seconds: float
) -> str | None:
    """Record a failed run: back to pending after `delay_seconds`, or failed (dead letter) when
    `final` or out of attempts. Returns the new status (None: the lease was lost meanwhile)."""
    now = utcnow()
    dead = final or job.attempts >= job.max_attempts
    values: dict[str, Any] = {"error": error[:4000], "locked_by": None, "lease_expires_at": None, "updated_at": now}
    if dead:
        values.update(status=FAILED, completed_at=now)
    else:
        values.update(status=PENDING, scheduled_for=now + dt.timedelta(seconds=delay_seconds))
    outcome = await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.locked_by == worker_id, Job.status == PROCESSING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if outcome.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return FAILED if dead else PENDING


async def retry(session: AsyncSession, job_id: str) -> Job:
    """Admin: put a dead-lettered job back in the queue with fresh attempts."""
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"No job '{job_id}'.", param="id")
    if job.status != FAILED:
        raise Conflict(f"Job '{job_id}' is {job.status}; only failed jobs can be retried.", code="job_not_failed")
    now = utcnow()
    job.status, job.attempts, job.scheduled_for = PENDING, 0, now
    job.completed_at = job.locked_by = job.lease_expires_at = None
    job.updated_at = now
    await session.flush()
    return job


async def counts(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Jobs by status, then by type."""
    rows = await session.execute(select(Job.status, Job.type, func.count()).group_by(Job.status, Job.type))
    out: dict[str, dict[str, int]] = {s: {} for s in (PENDING, PROCESSING, COMPLETED, FAILED)}
    for status, type_, n in rows:
        out.setdefault(status, {})[type_] = n
    return out


async def due_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Job).where(_due(utcnow()))) or 0)


def job_view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "type": job.type, "status": job.status, "priority": job.priority,
        "attempts": job.attempts, "max_attempts": job.max_attempts, "organization_id": job.organization_id,
        "scheduled_for": job.scheduled_for, "started_at": job.started_at, "completed_at": job.completed_at,
        "locked_by": job.locked_by, "error": job.error, "result": job.result, "payload": job.payload,
        "created_at": job.created_at,
    }

"""The `batches.run` job: validate the input, run its lines with bounded concurrency for one
slice of time, hand over to a fresh job, finalize. Run by `aibroker worker` and by
`POST /api/jobs/process` alike.

A worker killed mid-batch loses its job lease; another worker takes the job again and goes
on from the lines' result rows: a billed line has its row (written with its debit), so it
is never called or charged again; a line in flight had no row and no charge, and runs again."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.batches import jsonl, repository, results
from aibroker.batches.lines import LineRunner, Throttled, principal_of
from aibroker.batches.store import blob_store
from aibroker.batches.views import TERMINAL
from aibroker.errors import PermissionDenied
from aibroker.jobs import queue
from aibroker.jobs.database import write_sessions
from aibroker.jobs.registry import JobContext, register
from aibroker.kit.clock import utcnow
from aibroker.models import Batch, Organization, StoredFile
from aibroker.tenancy.auth import ACTIVE_STATUSES

log = logging.getLogger(__name__)

JOB = "batches.run"
STATUS_CHECK_SECONDS = 1.0  # how often a running slice looks for a cancel
MAX_THROTTLE_SECONDS = 3600.0  # a rate-limited batch looks again at least this often


async def enqueue_run(session: AsyncSession, batch: Batch, *, delay_seconds: float = 0) -> str:
    return await queue.enqueue(session, JOB, {"batch_id": batch.id}, organization_id=batch.organization_id,
                               delay_seconds=delay_seconds)


class BatchRun:
    def __init__(self, services: Any, batch_id: str) -> None:
        self.services = services
        self.batch_id = batch_id
        self.sessions = services.db.sessions
        self.writes = write_sessions(services.db)
        self.store = blob_store(services)
        self.settings = services.settings.batches
        self.retry_after = 0.0  # > 0: a rate limit refused lines; the next slice waits this long

    async def _load(self) -> tuple[Batch | None, StoredFile | None]:
        async with self.sessions() as session:
            batch = await session.get(Batch, self.batch_id)
            source = await session.get(StoredFile, batch.input_file_id) if batch is not None else None
        return batch, source

    async def _set(self, only_from: tuple[str, ...] | None = None, **values: Any) -> bool:
        async with self.writes() as session:
            changed = await repository.set_fields(session, self.batch_id, only_from=only_from, **values)
            await session.commit()
        return changed

    async def step(self) -> str:
        """Advance the batch; "continue" when another slice must run."""
        batch, source = await self._load()
        if batch is None or batch.status in TERMINAL:
            return batch.status if batch is not None else "missing"
        if source is None or source.organization_id != batch.organization_id:
            await self._fail(batch, [{"code": "input_file_missing", "message": "The input file was deleted.", "param": "input_file_id", "line": None}])
            return "failed"
        if batch.status == "validating":
            check = await jsonl.validate(self.store, source.storage_key, batch.endpoint, self.settings.batch_max_lines)
            if check.errors:
                await self._fail(batch, check.errors)
                return "failed"
            if not await self._set(("validating",), status="in_progress", in_progress_at=utcnow(), total=check.total, model=check.model):
                return await self.step()  # cancelled meanwhile
            batch, _ = await self._load()
            assert batch is not None
        if batch.status == "in_progress" and utcnow() < batch.expires_at:
            await self._run_slice(batch, source)
            batch, _ = await self._load()
            assert batch is not None
        if batch.status == "cancelling":
            await results.finish(self.sessions, self.writes, self.store, batch, source.storage_key, "cancelled")
            return "cancelled"
        if batch.status == "in_progress" and utcnow() >= batch.expires_at:
            await results.finish(self.sessions, self.writes, self.store, batch, source.storage_key, "expired")
            return "expired"
        async with self.sessions() as session:
            done = len(await repository.done_indexes(session, batch.id))
        if batch.status == "in_progress" and done < batch.total:
            await self._set(("in_progress",), **_counts(await self._counts()))
            return "continue"
        if batch.status == "in_progress":
            await self._set(("in_progress",), status="finalizing", finalizing_at=utcnow())
            batch, _ = await self._load()
            assert batch is not None
        if batch.status == "finalizing":
            await results.finish(self.sessions, self.writes, self.store, batch, source.storage_key, "completed")
            return "completed"
        return await self.step()  # cancelled between our reads: go again

    async def _counts(self) -> tuple[int, int]:
        async with self.sessions() as session:
            return (await repository.line_counts(session, [self.batch_id])).get(self.batch_id, (0, 0))

    async def _fail(self, batch: Batch, errors: list[dict[str, Any]]) -> None:
        await self._set(("validating", "in_progress"), status="failed", failed_at=utcnow(),
                        errors={"object": "list", "data": errors})

    async def _run_slice(self, batch: Batch, source: StoredFile) -> None:
        """Run not-yet-done lines, `batch_concurrency` at a time, until the slice's time is up
        (at least one line), the batch is cancelled or expires, or every line has run."""
        async with self.sessions() as session:
            done = await repository.done_indexes(session, batch.id)
            org = await session.get(Organization, batch.organization_id)
        principal = await principal_of(self.services, batch)
        plan = self.services.plans.get(principal.plan) if self.services.plans is not None else None
        runner = LineRunner(self.services, batch, principal, (plan.batch_discount_bps or 0) if plan is not None else 0)
        inactive = org is None or org.status not in ACTIVE_STATUSES
        deadline = time.monotonic() + self.settings.batch_slice_seconds
        next_check = time.monotonic() + STATUS_CHECK_SECONDS
        running: set[asyncio.Task[None]] = set()
        started = False
        try:
            async for line in jsonl.lines(self.store, source.storage_key):
                if line.index in done:
                    continue
                now = time.monotonic()
                if started and now >= deadline:
                    break
                if now >= next_check:
                    next_check = now + STATUS_CHECK_SECONDS
                    current, _ = await self._load()
                    if current is None or current.status != "in_progress" or utcnow() >= current.expires_at:
                        break
                while len(running) >= self.settings.batch_concurrency:
                    finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    running -= finished
                    self._outcomes(finished)
                if self.retry_after:
                    break
                if inactive:  # a live request of a suspended organization is refused at auth
                    refusal = PermissionDenied(f"The organization is {org.status if org else 'gone'}.", code="organization_inactive")
                    task = asyncio.ensure_future(runner.record_failure(line, None, refusal.status_code, refusal.body()))
                else:
                    task = asyncio.ensure_future(runner.run(line))
                running.add(task)
                started = True
            if running:
                self._outcomes((await asyncio.wait(running))[0])
                running.clear()
        finally:
            for task in running:
                task.cancel()  # the job is stopping: in-flight lines release their holds, no row


    def _outcomes(self, finished: set[asyncio.Task[None]]) -> None:
        for task in finished:
            try:
                task.result()  # a line's own failure was recorded; what is raised here is the database failing
            except Throttled as exc:
                self.retry_after = max(self.retry_after, min(exc.retry_after, MAX_THROTTLE_SECONDS))


def _counts(counts: tuple[int, int]) -> dict[str, int]:
    return {"completed": counts[0], "failed": counts[1]}


async def _dead(session: AsyncSession, payload: dict[str, Any], error: str) -> None:
    """The job gave up (its attempts ran out): the batch fails rather than stay in progress forever."""
    await repository.set_fields(
        session, payload["batch_id"], only_from=("validating", "in_progress", "finalizing", "cancelling"),
        status="failed", failed_at=utcnow(),
        errors={"object": "list", "data": [{"code": "batch_failed", "message": error[:500], "param": None, "line": None}]},
    )


@register(JOB, on_dead=_dead)
async def run(job: JobContext) -> dict[str, Any]:
    step = BatchRun(job.services, job.payload["batch_id"])
    outcome = await step.step()
    if outcome == "continue":  # the next slice: a new job, committed with this one's completion
        async with job.reads() as session:
            batch = await session.get(Batch, step.batch_id)
        if batch is not None:
            await enqueue_run(job.session, batch, delay_seconds=step.retry_after)
    return {"batch_id": step.batch_id, "status": outcome}

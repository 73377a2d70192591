"""Workers: claim a job, run its handler in a transaction that also marks it completed,
renew the lease while it runs, back off on failure.

`Worker.run()` loops until stopped (`aibroker worker`); `Worker.run_batch()` drains up to
N due jobs and returns (POST /api/jobs/process, cron-style hosting).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from aibroker.jobs import queue
from aibroker.jobs.database import write_sessions
from aibroker.jobs.queue import ClaimedJob
from aibroker.jobs.registry import GiveUp, JobContext, RetryLater, handler_for
from aibroker.kit.ids import new_id

log = logging.getLogger("aibroker.jobs")


class Worker:
    def __init__(
        self,
        services: Any,
        *,
        concurrency: int = 1,
        worker_id: str | None = None,
        lease_seconds: float | None = None,
        poll_seconds: float | None = None,
        types: list[str] | None = None,
    ) -> None:
        settings = services.settings.messaging
        self.services = services
        self.concurrency = max(1, concurrency)
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[-8:]}"
        self.lease_seconds = lease_seconds or settings.job_lease_seconds
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.job_poll_seconds
        self.backoff_base = settings.job_backoff_base_seconds
        self.backoff_max = settings.job_backoff_max_seconds
        self.types = types
        self.writes = write_sessions(services.db)
        self.stats: dict[str, int] = {"completed": 0, "retried": 0, "failed": 0, "lost": 0}

    # -- loops --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; jobs already started finish first."""
        await self._dispatch(stop=stop)

    async def run_batch(self, max_jobs: int) -> dict[str, int]:
        """Run up to `max_jobs` due jobs (with this worker's concurrency), then return once
        nothing is due and the started ones have finished."""
        before = dict(self.stats)
        await self._dispatch(budget=max_jobs)
        return {k: self.stats[k] - before[k] for k in self.stats}

    async def _dispatch(self, *, stop: asyncio.Event | None = None, budget: int | None = None) -> None:
        """Fill every free slot with one claim (one statement for all of them), then wait
        for a slot to free up, or, with nothing due, for a job to end or the poll interval."""
        running: set[asyncio.Task[str]] = set()
        stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            while stop is None or not stop.is_set():
                free = self.concurrency - len(running)
                if budget is not None:
                    free = min(free, budget)
                jobs: list[ClaimedJob] = []
                if free > 0:
                    try:
                        jobs = await self.claim_many(free)
                    except Exception:
                        log.exception("claiming jobs failed")
                for job in jobs:
                    task = asyncio.ensure_future(self.execute(job))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if budget is not None:
                    budget -= len(jobs)
                    if not running or budget <= 0:
                        break  # a batch ends when nothing is due, or its budget is spent
                waiters: set[asyncio.Future[Any]] = {*running, *([stopping] if stopping is not None else [])}
                drained = len(jobs) < free  # nothing more is due right now
                if not waiters:
                    await asyncio.sleep(self.poll_seconds)
                    continue
                # Wake when a job ends (a slot is free, and it may have enqueued the next
                # job) or when stopping; with nothing due, at the latest after the poll interval.
                await asyncio.wait(waiters, timeout=self.poll_seconds if drained else None, return_when=asyncio.FIRST_COMPLETED)
            if running:
                await asyncio.wait(running)
        finally:
            if stopping is not None:
                stopping.cancel()

    # -- one job ------------------------------------------------------------------------

    async def claim(self) -> ClaimedJob | None:
        claimed = await self.claim_many(1)
        return claimed[0] if claimed else None

    async def claim_many(self, limit: int) -> list[ClaimedJob]:
        async with self.writes() as session:
            jobs = await queue.claim_many(session, limit, worker_id=self.id, lease_seconds=self.lease_seconds, types=self.types)
            await session.commit()
        return jobs

    # -- one job ------------------------------------------------------------------------

    async def execute(self, job: ClaimedJob) -> str:
        """Run one claimed job to an outcome: completed | pending (retry) | failed | lost."""
        registered = handler_for(job.type)
        if registered is None:
            return await self._failed(job, f"No handler is registered for job type '{job.type}'.", final=True)
        if job.attempts > job.max_attempts:  # taken again after its worker died, too many times
            return await self._failed(job, "The job's lease expired after its last attempt (worker lost).", final=True)
        work = asyncio.ensure_future(self._run_handler(job, registered.run))
        beat = asyncio.ensure_future(self._heartbeat(job, work))
        try:
            outcome = await work
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if (task is not None and task.cancelling()) or not beat.done():
                raise  # shutdown or crash: the lease expires and another worker takes the job
            self.stats["lost"] += 1  # the heartbeat found the lease lost and stopped the work
            return "lost"
        except GiveUp as exc:
            return await self._failed(job, str(exc), final=True)
        except RetryLater as exc:
            return await self._failed(job, str(exc), final=False, delay=exc.delay)
        except Exception as exc:  # any other failure is retried with backoff
            log.warning("job failed", extra={"fields": {"job": job.id, "type": job.type, "error": repr(exc)}})
            return await self._failed(job, f"{type(exc).__name__}: {exc}", final=False)
        finally:
            beat.cancel()
        self.stats[outcome] += 1
        return outcome

    async def _run_handler(self, job: ClaimedJob, run: Any) -> str:
        async with self.writes() as session:
            ctx = JobContext(
                id=job.id, type=job.type, payload=job.payload, organization_id=job.organization_id,
                attempts=job.attempts, max_attempts=job.max_attempts, session=session,
                services=self.services, reads=self.services.db.sessions, worker_id=self.id,
            )
            try:
                result = await run(ctx)
                if await queue.complete(session, job.id, self.id, result):
                    await session.commit()
                    return "completed"
                await session.rollback()  # the lease was lost: another worker owns the job now
                return "lost"
            except BaseException:
                await session.rollback()
                raise

    async def _heartbeat(self, job: ClaimedJob, work: asyncio.Future[Any]) -> None:
        """Renew the lease at a third of its length; stop the work if the lease was lost."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                async with self.writes() as session:
                    held = await queue.heartbeat(session, job.id, self.id, self.lease_seconds)
                    await session.commit()
            except Exception:
                log.exception("lease renewal failed", extra={"fields": {"job": job.id}})
                continue
            if not held:
                work.cancel()
                return

    async def _failed(self, job: ClaimedJob, error: str, *, final: bool, delay: float | None = None) -> str:
        if delay is None:
            delay = queue.backoff_seconds(job.attempts, self.backoff_base, self.backoff_max)
        registered = handler_for(job.type)
        async with self.writes() as session:
            status = await queue.fail(session, job, self.id, error, final=final, delay_seconds=delay)
            if status == queue.FAILED and registered is not None and registered.on_dead is not None:
                await registered.on_dead(session, job.payload, error)
            await session.commit()
        if status is None:
            self.stats["lost"] += 1
            return "lost"
        key = "failed" if status == queue.FAILED else "retried"
        self.stats[key] += 1
        if status == queue.FAILED:
            log.error("job dead-lettered", extra={"fields": {"job": job.id, "type": job.type, "error": error[:500]}})
        return status

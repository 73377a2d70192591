"""The job queue against a real database (SQLite; PostgreSQL when configured): enqueue in the
caller's transaction, several concurrent workers (each its own connection pool) never running
one job twice at once, a crashed worker's job taken again after its lease, backoff, dead
letters and the admin retry."""

from __future__ import annotations

import asyncio
import datetime as dt
import types
from collections import Counter

import pytest
from sqlalchemy import select

from aibroker.config import Settings
from aibroker.db import Database
from aibroker.errors import Conflict
from aibroker.jobs import GiveUp, enqueue, queue, register
from aibroker.jobs.database import dispose, write_sessions
from aibroker.jobs.runner import Worker
from aibroker.kit.clock import set_clock
from aibroker.models import Job

SLOTS = 4
RUNS: Counter[str] = Counter()
RUNNING: set[str] = set()
OVERLAPS: list[str] = []
GATE: dict[str, asyncio.Event] = {}
BEHAVIOUR: dict[str, str] = {}
# Set by a test: record() jobs wait until more jobs run at once than one worker has slots.
SHARED: dict[str, asyncio.Event] = {}
PER_WORKER: Counter[str] = Counter()  # jobs running now, per worker
PEAK: Counter[str] = Counter()  # the most each worker ever ran at once


@register("test.record")
async def record(ctx):  # type: ignore[no-untyped-def]
    if ctx.id in RUNNING:
        OVERLAPS.append(ctx.id)
    RUNNING.add(ctx.id)
    PER_WORKER[ctx.worker_id] += 1
    PEAK[ctx.worker_id] = max(PEAK[ctx.worker_id], PER_WORKER[ctx.worker_id])
    try:
        busy = SHARED.get("busy")
        if busy is not None:
            if len(RUNNING) > SLOTS:
                busy.set()
            await asyncio.wait_for(busy.wait(), 10)  # one worker alone could never get here
        await asyncio.sleep(0)  # yield so other workers interleave
        RUNS[ctx.id] += 1
        return {"n": ctx.payload["n"]}
    finally:
        RUNNING.discard(ctx.id)
        PER_WORKER[ctx.worker_id] -= 1


@register("test.block")
async def block(ctx):  # type: ignore[no-untyped-def]
    RUNS[ctx.id] += 1
    gate = GATE.get(ctx.id)
    if gate is not None and RUNS[ctx.id] == 1:
        await gate.wait()  # the first run hangs until its worker is killed
    return {"run": RUNS[ctx.id]}


@register("test.flaky")
async def flaky(ctx):  # type: ignore[no-untyped-def]
    RUNS[ctx.id] += 1
    mode = BEHAVIOUR.get(ctx.id, "fail")
    if mode == "fail":
        raise RuntimeError(f"boom {RUNS[ctx.id]}")
    if mode == "give_up":
        raise GiveUp("invalid token")
    return {"ok": True}


@pytest.fixture
def clock():  # type: ignore[no-untyped-def]
    offset = [0.0]
    set_clock(lambda: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset[0]))
    yield offset
    set_clock(None)


@pytest.fixture
async def services(database_url, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIBROKER_JOB_BACKOFF_BASE_SECONDS", "10")
    settings = Settings()
    dbs: list[Database] = []

    def make() -> types.SimpleNamespace:
        db = Database(database_url)
        dbs.append(db)
        return types.SimpleNamespace(settings=settings, db=db)

    RUNS.clear(), RUNNING.clear(), OVERLAPS.clear(), GATE.clear(), BEHAVIOUR.clear(), SHARED.clear()
    PER_WORKER.clear(), PEAK.clear()
    yield make
    for db in dbs:
        await db.dispose()
    await dispose(database_url)


async def _enqueue(svc, type_: str, n: int = 1, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    async with write_sessions(svc.db)() as session:
        ids = [await enqueue(session, type_, {"n": i}, **kw) for i in range(n)]
        await session.commit()
    return ids


async def _job(svc, job_id: str) -> Job:  # type: ignore[no-untyped-def]
    async with svc.db.sessions() as session:
        return (await session.scalars(select(Job).where(Job.id == job_id))).one()


async def test_enqueue_belongs_to_the_callers_transaction(services):
    svc = services()
    async with write_sessions(svc.db)() as session:
        await enqueue(session, "test.record", {"n": 1})
        await session.rollback()
    async with svc.db.sessions() as session:
        assert await queue.due_count(session) == 0


async def test_concurrent_workers_run_each_job_exactly_once(services):
    ids = await _enqueue(services(), "test.record", 120)
    SHARED["busy"] = asyncio.Event()  # the first jobs wait until a second worker runs some too
    workers = [Worker(services(), concurrency=SLOTS, worker_id=f"w{i}", poll_seconds=0.01) for i in range(5)]
    outcomes = await asyncio.gather(*(w.run_batch(1000) for w in workers))
    assert sum(o["completed"] for o in outcomes) == 120
    assert OVERLAPS == [] and set(RUNS) == set(ids) and set(RUNS.values()) == {1}
    assert sum(1 for o in outcomes if o["completed"]) > 1  # the work really was shared
    assert max(PEAK.values()) <= SLOTS  # a claim never takes more jobs than free slots
    async with services().db.sessions() as session:
        assert (await queue.counts(session))["completed"] == {"test.record": 120}


async def test_priority_then_schedule_order(services):
    svc = services()
    low = await _enqueue(svc, "test.record", 1, priority=0)
    high = await _enqueue(svc, "test.record", 1, priority=10)
    worker = Worker(svc, worker_id="w")
    first = await worker.claim()
    assert first is not None and first.id == high[0]
    second = await worker.claim()
    assert second is not None and second.id == low[0]


async def test_a_killed_workers_job_is_taken_again_after_its_lease(services, clock):
    svc = services()
    [job_id] = await _enqueue(svc, "test.block")
    GATE[job_id] = asyncio.Event()
    crashed = Worker(svc, worker_id="crashed", lease_seconds=30)
    claimed = await crashed.claim()
    running = asyncio.create_task(crashed.execute(claimed))
    while RUNS[job_id] == 0:
        await asyncio.sleep(0)
    running.cancel()  # the process dies: no completion, no failure record, no more heartbeats
    with pytest.raises(asyncio.CancelledError):
        await running
    rescuer = Worker(services(), worker_id="rescuer", lease_seconds=30)
    assert await rescuer.run_batch(5) == {"completed": 0, "retried": 0, "failed": 0, "lost": 0}  # lease still valid
    clock[0] += 31  # the lease expires
    assert (await rescuer.run_batch(5))["completed"] == 1
    job = await _job(svc, job_id)
    assert (job.status, job.attempts, job.result) == ("completed", 2, {"run": 2})
    async with write_sessions(svc.db)() as session:  # the dead worker can never complete it late
        assert await queue.complete(session, job_id, "crashed", {"late": True}) is False


async def test_lost_lease_stops_the_work_and_keeps_the_new_owner(services, clock):
    svc = services()
    [job_id] = await _enqueue(svc, "test.block")
    GATE[job_id] = asyncio.Event()
    slow = Worker(svc, worker_id="slow", lease_seconds=0.3)
    running = asyncio.create_task(slow.execute(await slow.claim()))
    while RUNS[job_id] == 0:
        await asyncio.sleep(0)
    clock[0] += 10  # the slow worker's lease runs out (say, a long GC pause) before its next heartbeat
    rescuer = Worker(services(), worker_id="rescuer", lease_seconds=30)
    assert (await rescuer.run_batch(1))["completed"] == 1
    assert await running == "lost"  # its heartbeat sees the lease gone and stops the work
    assert (await _job(svc, job_id)).locked_by == "rescuer"


async def test_failures_back_off_then_dead_letter_then_admin_retry(services, clock):
    svc = services()
    [job_id] = await _enqueue(svc, "test.flaky", max_attempts=3)
    worker = Worker(svc, worker_id="w")
    delays = []
    for attempt in (1, 2):
        assert (await worker.run_batch(5))["retried"] == 1
        job = await _job(svc, job_id)
        assert (job.status, job.attempts, job.error) == ("pending", attempt, f"RuntimeError: boom {attempt}")
        assert (await worker.run_batch(5))["completed"] == 0  # not due before its backoff
        delays.append(job.scheduled_for)
        clock[0] += 10 * 2 ** attempt + 5
    assert (await worker.run_batch(5))["failed"] == 1
    job = await _job(svc, job_id)
    assert (job.status, job.attempts, job.error) == ("failed", 3, "RuntimeError: boom 3")
    assert delays[0] < delays[1]
    BEHAVIOUR[job_id] = "ok"
    async with write_sessions(svc.db)() as session:
        await queue.retry(session, job_id)
        await session.commit()
    assert (await worker.run_batch(5))["completed"] == 1
    assert (await _job(svc, job_id)).status == "completed"
    async with write_sessions(svc.db)() as session:
        with pytest.raises(Conflict):
            await queue.retry(session, job_id)


async def test_give_up_fails_at_once(services):
    svc = services()
    [job_id] = await _enqueue(svc, "test.flaky")
    BEHAVIOUR[job_id] = "give_up"
    assert (await Worker(svc, worker_id="w").run_batch(5))["failed"] == 1
    job = await _job(svc, job_id)
    assert (job.status, job.attempts, job.error) == ("failed", 1, "invalid token")


async def test_unknown_job_type_is_dead_lettered(services):
    svc = services()
    [job_id] = await _enqueue(svc, "nobody.handles")
    assert (await Worker(svc, worker_id="w").run_batch(5))["failed"] == 1
    assert "No handler" in (await _job(svc, job_id)).error

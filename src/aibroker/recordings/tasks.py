"""The audio worker (seed 002's Audio Processing service): job `recordings.process`.

    decode everything once (corrupt / truncated audio fails here, before any charge)
    -> hold the estimated cost (too little balance: failed `insufficient_balance`)
    -> transcribe each segment through the gateway, committing each result as it lands
    -> analyse the transcript through the gateway -> analyzed

Exactly once per segment: a segment's row is written `started` with the request id of its
call before the call, and `done` with its text after. A worker that dies mid-job loses its
job lease; the next one skips the done segments and starts from the first one not done. If
the dead worker's call had already been billed (it died between the debit and the `done`
write), the new call's charge is matched by a refund of the old one, keyed by its request
id, so the tenant pays each segment once. Every write checks that this worker still holds
the job, so a worker that lost its lease stops instead of racing its successor."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.billing.batch import PostEntry
from aibroker.errors import BrokerError
from aibroker.jobs import JobContext, RetryLater, register
from aibroker.jobs.database import write_sessions
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_request_id
from aibroker.models import Job, Recording, RecordingAnalysis, RecordingSegment
from aibroker.providers.errors import ProviderError
from aibroker.recordings import audio, calls
from aibroker.recordings.money import job_hold
from aibroker.recordings.repository import RecordingRepository
from aibroker.recordings.service import PROCESS_JOB
from aibroker.storage import blob_store_for

SAMPLE_RATE = audio.SAMPLE_RATE


class Stop(Exception):
    """The recording was deleted, or this worker no longer holds the job."""


def _progress(done: int, total: int) -> int:
    return min(99, (done * 100) // (total + 1))  # the analysis is the last step


async def _owned(session: AsyncSession, job: JobContext) -> None:
    held = await session.scalar(select(Job.id).where(Job.id == job.id, Job.locked_by == job.worker_id, Job.status == "processing"))
    if held is None:
        raise Stop("lease lost")


async def _fail(job: JobContext, recording_id: str, code: str, message: str) -> dict[str, Any]:
    async with write_sessions(job.services.db)() as session:
        row = await session.get(Recording, recording_id)
        if row is not None:
            row.status, row.failure_code, row.failure_message = "failed", code, message[:2000]
            row.updated_at = utcnow()
        await session.commit()
    return {"failed": code, "reason": message[:500]}


async def _dead(session: AsyncSession, payload: dict[str, Any], error: str) -> None:
    row = await session.get(Recording, payload.get("recording_id"))
    if row is not None and row.status in ("uploaded", "processing"):
        row.status, row.failure_code, row.failure_message = "failed", "processing_failed", error[:2000]


async def _refund_lost(job: JobContext, row: RecordingSegment) -> None:
    """A segment whose call was billed but whose result never landed: refund that charge."""
    async with job.reads() as reads:
        billed = await RecordingRepository(reads).billed_for(row.organization_id, row.request_id or "")
    owed = billed - row.refunded_micros
    if owed <= 0 or job.services.gateway.leases is None:
        return
    await job.services.writer.submit(PostEntry(
        row.organization_id, "refund", owed, idempotency_key=f"recording-segment:{row.request_id}",
        description=f"recording {row.recording_id} segment {row.index}: its result was lost; transcribed again",
    ))
    async with write_sessions(job.services.db)() as session:
        seg = await session.get(RecordingSegment, (row.recording_id, row.index))
        if seg is not None:  # the lost call never reached the recording's cost: nothing to take off
            seg.refunded_micros += owed
        await session.commit()


async def _start(job: JobContext, rec: Recording, index: int, bounds: tuple[int, int], request_id: str) -> None:
    async with write_sessions(job.services.db)() as session:
        await _owned(session, job)
        seg = await session.get(RecordingSegment, (rec.id, index))
        if seg is None:
            seg = RecordingSegment(recording_id=rec.id, index=index, organization_id=rec.organization_id,
                                   cost_micros=0, refunded_micros=0, created_at=utcnow())
            session.add(seg)
        seg.start_ms, seg.end_ms = bounds[0] * 1000 // SAMPLE_RATE, bounds[1] * 1000 // SAMPLE_RATE
        seg.status, seg.request_id, seg.updated_at = "started", request_id, utcnow()
        await session.commit()


async def _finish(job: JobContext, rec: Recording, index: int, done: calls.Transcribed, total: int) -> None:
    async with write_sessions(job.services.db)() as session:
        row = await session.get(Recording, rec.id, with_for_update=True)
        if row is None:
            raise Stop("deleted")
        seg = await session.get(RecordingSegment, (rec.id, index))
        seg.status, seg.text, seg.language, seg.model = "done", done.text, done.language, done.model
        seg.cost_micros, seg.updated_at = done.cost_micros, utcnow()
        row.segments_done = int(await session.scalar(
            select(func.count()).select_from(RecordingSegment)
            .where(RecordingSegment.recording_id == rec.id, RecordingSegment.status == "done")
        ) or 0)
        row.segments_total, row.progress = total, _progress(row.segments_done, total)
        row.cost_micros += done.cost_micros
        row.updated_at = utcnow()
        await session.commit()


@register(PROCESS_JOB, on_dead=_dead)
async def process(job: JobContext) -> dict[str, Any]:
    try:
        return await _process(job)
    except Stop as stop:
        return {"stopped": str(stop)}


async def _process(job: JobContext) -> dict[str, Any]:
    services, settings = job.services, job.services.settings.recordings
    recording_id = job.payload["recording_id"]
    async with job.reads() as reads:
        rec = await reads.get(Recording, recording_id)
        if rec is None or rec.status not in ("uploaded", "processing") or not rec.storage_key:
            return {"skipped": f"recording is {rec.status if rec else 'deleted'}"}
        existing = {s.index: s for s in await RecordingRepository(reads).segments(recording_id)}
    async with write_sessions(services.db)() as session:
        await _owned(session, job)
        await RecordingRepository(session).claim_status(rec.organization_id, rec.id, ("uploaded", "processing"), "processing")
        await session.commit()

    store, loop = blob_store_for(job.services.settings.storage), asyncio.get_running_loop()
    size = int(rec.size_bytes or 0)
    declared = rec.duration_ms / 1000 if rec.duration_ms else None
    try:
        samples = await asyncio.to_thread(audio.decoded_samples, audio.BlobFile(store, rec.storage_key, size, loop), declared)
    except audio.MediaProblem as problem:
        return await _fail(job, rec.id, problem.code, problem.message)
    bounds = audio.segment_bounds(samples, settings.segment_seconds)
    todo = [i for i in range(len(bounds)) if i not in existing or existing[i].status != "done"]

    gateway = services.gateway
    principal = await services.auth.principal_for_org(rec.organization_id, admin=False)
    probe_ctx = calls.context(principal, calls.TRANSCRIBE_FEATURE, "audio", rec.user_id)
    model = calls.transcription_model(gateway, probe_ctx, settings.transcription_model, set(services.catalog.enabled_providers))
    template = calls.analysis_body("", settings.analysis_model, settings.analysis_max_tokens)
    chat_ctx = calls.context(principal, calls.ANALYSIS_FEATURE, "chat", rec.user_id)
    try:
        seconds = [calls.whole_seconds(bounds[i][1] - bounds[i][0], SAMPLE_RATE) for i in todo]
        estimate = calls.estimate(gateway, probe_ctx, chat_ctx, model, seconds, template)
        async with job_hold(gateway, rec.organization_id, estimate) as held:
            for index in todo:
                if index in existing and existing[index].status == "started" and existing[index].request_id:
                    await _refund_lost(job, existing[index])
            if todo:
                await _transcribe_all(job, held, principal, rec, bounds, todo, model)
            segments, transcript, result = await _analyse(job, held, chat_ctx, rec, template)
        # After the hold is given back: on SQLite the job's session takes the write lock.
        return await _store_analysis(job, chat_ctx, rec, samples, segments, transcript, result)
    except ProviderError as exc:  # upstream trouble: retried with backoff, finished segments kept
        raise RetryLater(f"AI provider failed: {exc.message}", delay=exc.retry_after) from exc
    except BrokerError as exc:
        if exc.status_code >= 500:
            raise RetryLater(exc.message) from exc
        return await _fail(job, rec.id, exc.code or "processing_refused", exc.message)


async def _transcribe_all(job: JobContext, gateway: Any, principal: Any, rec: Recording, bounds: list[tuple[int, int]],
                          todo: list[int], model: str | None) -> None:
    store, loop = blob_store_for(job.services.settings.storage), asyncio.get_running_loop()
    source = audio.BlobFile(store, rec.storage_key or "", int(rec.size_bytes or 0), loop)
    pieces = audio.segments_from(source, bounds, todo[0])
    wanted = set(todo)
    while (item := await asyncio.to_thread(next, pieces, None)) is not None:
        index, wav = item
        if index not in wanted:
            continue
        request_id = new_request_id()
        await _start(job, rec, index, bounds[index], request_id)
        ctx = calls.context(principal, calls.TRANSCRIBE_FEATURE, "audio", rec.user_id, request_id)
        done = await calls.transcribe(gateway, ctx, model, index, wav, job.services.settings.recordings.language)
        await _finish(job, rec, index, done, len(bounds))


async def _analyse(job: JobContext, gateway: Any, ctx: Any, rec: Recording,
                   template: dict[str, Any]) -> tuple[list[RecordingSegment], str, calls.Analysed]:
    async with job.reads() as reads:
        segments = [s for s in await RecordingRepository(reads).segments(rec.id) if s.status == "done"]
    transcript = "\n".join(s.text or "" for s in segments).strip()
    body = {**template, "messages": [template["messages"][0], {"role": "user", "content": transcript or "(silence)"}]}
    return segments, transcript, await calls.analyse(gateway, ctx, body)


async def _store_analysis(job: JobContext, ctx: Any, rec: Recording, samples: int, segments: list[RecordingSegment],
                          transcript: str, result: calls.Analysed) -> dict[str, Any]:
    """The job's own transaction: the analysis commits with the job's completion."""
    session = job.session
    row = await session.get(Recording, rec.id, with_for_update=True)
    if row is None:
        return {"skipped": "recording deleted"}
    old = await session.get(RecordingAnalysis, rec.id)
    if old is not None:
        await session.delete(old)
        await session.flush()
    segments_cost = sum(s.cost_micros for s in segments)  # each segment's recorded (paid) call
    languages = [s.language for s in segments if s.language]
    session.add(RecordingAnalysis(
        recording_id=rec.id, organization_id=rec.organization_id, transcript=transcript,
        segments=[{"index": s.index, "start": s.start_ms / 1000, "end": s.end_ms / 1000, "text": s.text or ""} for s in segments],
        language=result.language or (languages[0] if languages else None), summary=result.summary, sentiment=result.sentiment,
        topics=result.topics, action_items=result.action_items,
        models={"transcription": sorted({s.model for s in segments if s.model}), "analysis": result.model},
        cost_micros=segments_cost + result.cost_micros,
        request_ids=[*(s.request_id for s in segments if s.request_id), ctx.request_id], created_at=utcnow(),
    ))
    row.status, row.progress, row.processed_at, row.updated_at = "analyzed", 100, utcnow(), utcnow()
    row.duration_ms = samples * 1000 // SAMPLE_RATE
    row.segments_total = row.segments_done = len(segments)
    row.cost_micros += result.cost_micros
    row.failure_code = row.failure_message = None
    return {"analyzed": rec.id, "segments": len(segments), "cost_micros": segments_cost + result.cost_micros}

"""All SQL of the recordings domain. Every query starts from the organization (`scoped`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.db import upsert_insert
from aibroker.kit.clock import utcnow
from aibroker.models import Recording, RecordingAnalysis, RecordingChunk, RecordingSegment, UsageRecord
from aibroker.tenancy.scoped import get_scoped, scoped


class RecordingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, organization_id: str, recording_id: str, *, lock: bool = False) -> Recording:
        """The organization's recording; 404 for anyone else's."""
        if lock:
            row = await self.session.scalar(
                scoped(Recording, organization_id).where(Recording.id == recording_id).with_for_update()
            )
            if row is not None:
                return row
        return await get_scoped(self.session, Recording, organization_id, recording_id, what="recording")

    async def page(
        self, organization_id: str, *, limit: int, before_id: str | None, status: str | None, user_id: str | None,
        created_from: dt.datetime | None, created_to: dt.datetime | None, text: str | None,
    ) -> list[Recording]:
        stmt = scoped(Recording, organization_id)
        if before_id:
            stmt = stmt.where(Recording.id < before_id)
        if status:
            stmt = stmt.where(Recording.status == status)
        if user_id:
            stmt = stmt.where(Recording.user_id == user_id)
        if created_from:
            stmt = stmt.where(Recording.created_at >= created_from)
        if created_to:
            stmt = stmt.where(Recording.created_at < created_to)
        if text:
            pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            in_transcript = select(RecordingAnalysis.recording_id).where(
                RecordingAnalysis.organization_id == organization_id,
                func.lower(RecordingAnalysis.transcript).like(pattern, escape="\\"),
            )
            stmt = stmt.where(or_(func.lower(Recording.title).like(pattern, escape="\\"), Recording.id.in_(in_transcript)))
        return list(await self.session.scalars(stmt.order_by(Recording.id.desc()).limit(limit)))

    # -- chunks -------------------------------------------------------------------------

    async def chunks(self, recording_id: str) -> list[RecordingChunk]:
        return list(await self.session.scalars(
            select(RecordingChunk).where(RecordingChunk.recording_id == recording_id).order_by(RecordingChunk.index)
        ))

    async def chunk(self, recording_id: str, index: int) -> RecordingChunk | None:
        return await self.session.get(RecordingChunk, (recording_id, index))

    async def save_chunk(self, row: dict[str, Any]) -> None:
        stmt = upsert_insert(self.session, RecordingChunk).values(**row, created_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=["recording_id", "index"],
            set_={"size_bytes": row["size_bytes"], "sha256": row["sha256"], "storage_key": row["storage_key"]},
        )
        await self.session.execute(stmt)

    async def drop_chunks(self, recording_id: str) -> None:
        await self.session.execute(delete(RecordingChunk).where(RecordingChunk.recording_id == recording_id))

    async def claim_status(self, organization_id: str, recording_id: str, old: tuple[str, ...], new: str, **values: Any) -> bool:
        """Move the recording from one of `old` to `new` (one statement: two racing callers
        cannot both win)."""
        result = await self.session.execute(
            update(Recording)
            .where(Recording.organization_id == organization_id, Recording.id == recording_id, Recording.status.in_(old))
            .values(status=new, updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    # -- segments and analysis --------------------------------------------------------

    async def segments(self, recording_id: str) -> list[RecordingSegment]:
        return list(await self.session.scalars(
            select(RecordingSegment).where(RecordingSegment.recording_id == recording_id).order_by(RecordingSegment.index)
        ))

    async def analysis(self, organization_id: str, recording_id: str) -> RecordingAnalysis | None:
        return await self.session.scalar(
            scoped(RecordingAnalysis, organization_id).where(RecordingAnalysis.recording_id == recording_id)
        )

    async def billed_for(self, organization_id: str, request_id: str) -> int:
        """What a request was debited, from its successful usage records (0: never billed)."""
        total = await self.session.scalar(
            select(func.coalesce(func.sum(UsageRecord.billed_cost_micros), 0)).where(
                UsageRecord.organization_id == organization_id, UsageRecord.request_id == request_id,
                UsageRecord.status == "success",
            )
        )
        return int(total or 0)

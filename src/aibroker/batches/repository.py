"""All SQL of batches. Functions take a session and never commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import NotFound
from aibroker.models import Batch, BatchLine
from aibroker.tenancy.scoped import scoped


async def get_batch(session: AsyncSession, organization_id: str, batch_id: str) -> Batch:
    """The organization's batch; 404 for an unknown id or another organization's."""
    row = await session.scalar(scoped(Batch, organization_id).where(Batch.id == batch_id))
    if row is None:
        raise NotFound(f"No such Batch object: {batch_id}", param="batch_id", code="batch_not_found")
    return row


async def list_batches(session: AsyncSession, organization_id: str, *, limit: int, after: str | None) -> tuple[list[Batch], bool]:
    """Newest first; `after` a batch id (ids sort by creation time)."""
    stmt = scoped(Batch, organization_id)
    if after:
        stmt = stmt.where(Batch.id < after)
    rows = list((await session.scalars(stmt.order_by(Batch.id.desc()).limit(limit + 1))).all())
    return rows[:limit], len(rows) > limit


async def line_counts(session: AsyncSession, batch_ids: list[str]) -> dict[str, tuple[int, int]]:
    """batch id -> (completed, failed), counted from the lines' results."""
    if not batch_ids:
        return {}
    ok = func.sum(case((BatchLine.ok.is_(True), 1), else_=0))
    rows = await session.execute(
        select(BatchLine.batch_id, ok, func.count()).where(BatchLine.batch_id.in_(batch_ids)).group_by(BatchLine.batch_id)
    )
    return {batch_id: (int(done or 0), int(total) - int(done or 0)) for batch_id, done, total in rows}


async def usage_totals(session: AsyncSession, batch_id: str) -> dict[str, Any]:
    row = (await session.execute(
        select(func.coalesce(func.sum(BatchLine.input_tokens), 0), func.coalesce(func.sum(BatchLine.output_tokens), 0),
               func.coalesce(func.sum(BatchLine.cached_tokens), 0)).where(BatchLine.batch_id == batch_id)
    )).one()
    inputs, outputs, cached = (int(v) for v in row)
    return {
        "input_tokens": inputs, "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": outputs, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": inputs + outputs,
    }


async def done_indexes(session: AsyncSession, batch_id: str) -> set[int]:
    return set((await session.scalars(select(BatchLine.line_index).where(BatchLine.batch_id == batch_id))).all())


async def lines_page(session: AsyncSession, batch_id: str, *, ok: bool, after: int, limit: int) -> list[BatchLine]:
    stmt = (select(BatchLine).where(BatchLine.batch_id == batch_id, BatchLine.ok.is_(ok), BatchLine.line_index > after)
            .order_by(BatchLine.line_index).limit(limit))
    return list((await session.scalars(stmt)).all())


async def set_fields(session: AsyncSession, batch_id: str, *, only_from: tuple[str, ...] | None = None, **values: Any) -> bool:
    """Update the batch (only while its status is one of `only_from`, when given)."""
    stmt = update(Batch).where(Batch.id == batch_id)
    if only_from:
        stmt = stmt.where(Batch.status.in_(only_from))
    result = await session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]

"""All SQL over usage records. Every query is scoped by organization id."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.models import UsageRecord

_TOTALS = (
    func.count().label("requests"),
    func.coalesce(func.sum(case((UsageRecord.status == "success", 1), else_=0)), 0).label("succeeded"),
    func.coalesce(func.sum(UsageRecord.input_tokens), 0).label("input_tokens"),
    func.coalesce(func.sum(UsageRecord.output_tokens), 0).label("output_tokens"),
    func.coalesce(func.sum(UsageRecord.provider_cost_micros), 0).label("provider_cost_micros"),
    func.coalesce(func.sum(UsageRecord.billed_cost_micros), 0).label("billed_cost_micros"),
    func.coalesce(func.sum(case((UsageRecord.cached.is_(True), 1), else_=0)), 0).label("cache_hits"),
    func.coalesce(func.avg(UsageRecord.latency_ms), 0).label("avg_latency_ms"),
)


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Narrowing of the records (the console's usage explorer); None: any."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    model: str | None = None
    feature: str | None = None
    status: str | None = None
    api_key_id: str | None = None
    user_id: str | None = None

    def apply(self, query: Select) -> Select:
        if self.model is not None:  # "gpt-4o-mini" finds "openai/gpt-4o-mini" too
            query = query.where(or_(UsageRecord.model == self.model, UsageRecord.model.endswith("/" + self.model, autoescape=True)))
        for column, value in ((UsageRecord.feature, self.feature), (UsageRecord.status, self.status),
                              (UsageRecord.api_key_id, self.api_key_id), (UsageRecord.user_id, self.user_id)):
            if value is not None:
                query = query.where(column == value)
        if self.start is not None:
            query = query.where(UsageRecord.created_at >= self.start)
        if self.end is not None:
            query = query.where(UsageRecord.created_at < self.end)
        return query


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _scoped(self, query: Select, organization_id: str | None, start: dt.datetime | None, end: dt.datetime | None) -> Select:
        if organization_id is not None:
            query = query.where(UsageRecord.organization_id == organization_id)
        if start is not None:
            query = query.where(UsageRecord.created_at >= start)
        if end is not None:
            query = query.where(UsageRecord.created_at < end)
        return query

    async def totals(self, organization_id: str | None, start=None, end=None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        row = (await self.session.execute(self._scoped(select(*_TOTALS), organization_id, start, end))).one()
        return _row_dict(row)

    async def grouped(self, organization_id: str | None, column: Any, label: str, start=None, end=None) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        query = self._scoped(select(column.label(label), *_TOTALS), organization_id, start, end)
        rows = (await self.session.execute(query.group_by(column).order_by(column))).all()
        return [_row_dict(r) for r in rows]

    def day_column(self) -> Any:
        return func.date(UsageRecord.created_at)

    async def page(self, organization_id: str, *, limit: int, before_id: str | None, filters: UsageFilter | None = None) -> list[UsageRecord]:
        query = select(UsageRecord).where(UsageRecord.organization_id == organization_id)
        if filters is not None:
            query = filters.apply(query)
        if before_id:
            query = query.where(UsageRecord.id < before_id)
        return list((await self.session.scalars(query.order_by(UsageRecord.id.desc()).limit(limit))).all())


    async def page_by_time(self, organization_id: str, *, limit: int, before: tuple[dt.datetime, str] | None,
                           filters: UsageFilter | None = None) -> list[UsageRecord]:
        """Newest first by (created_at, id): the (organization_id, created_at) index gives the order,
        so a page reads about `limit` rows however many the organization has."""
        query = select(UsageRecord).where(UsageRecord.organization_id == organization_id)
        if filters is not None:
            query = filters.apply(query)
        if before is not None:
            at, record_id = before
            query = query.where(UsageRecord.created_at <= at,  # the index's range; the OR breaks ties
                                or_(UsageRecord.created_at < at, and_(UsageRecord.created_at == at, UsageRecord.id < record_id)))
        order = (UsageRecord.created_at.desc(), UsageRecord.id.desc())
        return list((await self.session.scalars(query.order_by(*order).limit(limit))).all())


def _row_dict(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    for key, value in data.items():
        if isinstance(value, (dt.date, dt.datetime)):
            data[key] = value.isoformat()
        elif key == "avg_latency_ms":
            data[key] = round(float(value or 0), 1)
        elif key != "day" and value is not None and not isinstance(value, str):
            data[key] = int(value)
    return data

"""GET /api/events: the caller's organization's events (low balance, ...), newest first."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.deps import db_session, require
from aibroker.models import Event
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import Permission

router = APIRouter(tags=["Events"])


class EventView(BaseModel):
    id: str
    type: str = Field(description="e.g. wallet.low_balance")
    payload: dict[str, Any] = Field(description="Type-specific data (wallet.low_balance: wallet_id, balance_micros, threshold_micros).")
    created_at: dt.datetime | None
    delivered_at: dt.datetime | None = Field(description="When the platform webhook accepted it (null: not yet, or none configured).")
    delivery_attempts: int
    last_error: str | None = Field(description="Why the last webhook delivery failed, if it did.")


class EventPage(BaseModel):
    object: str = "list"
    data: list[EventView]
    has_more: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


@router.get("/api/events", response_model=EventPage)
async def list_events(
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page."),
    type: str | None = Query(None, description="Only events of this type."),
    who: Principal = Depends(require(Permission.VIEW_USAGE)),
    session: AsyncSession = Depends(db_session, scope="function"),
) -> EventPage:
    """The caller's organization's events, newest first, paginated by cursor."""
    query = select(Event).where(Event.organization_id == who.organization_id)
    if cursor:
        query = query.where(Event.id < cursor)  # ids are time-ordered
    if type:
        query = query.where(Event.type == type)
    rows = list(await session.scalars(query.order_by(Event.id.desc()).limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    data = [
        EventView(
            id=e.id, type=e.type, payload=e.payload or {}, created_at=e.created_at, delivered_at=e.delivered_at,
            delivery_attempts=e.delivery_attempts, last_error=e.last_error,
        )
        for e in rows
    ]
    return EventPage(data=data, has_more=has_more, next_cursor=rows[-1].id if has_more else None)

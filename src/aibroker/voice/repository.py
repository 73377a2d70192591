"""All SQL of voice sessions, each query scoped by organization id."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.models import VoiceSession

PENDING, ACTIVE, CLOSED, FAILED = "pending", "active", "closed", "failed"


def _live(now: dt.datetime, stale_before: dt.datetime) -> Any:
    return or_(
        and_(VoiceSession.status == PENDING, VoiceSession.token_expires_at > now),
        and_(VoiceSession.status == ACTIVE, VoiceSession.heartbeat_at > stale_before),
    )


async def live_count(session: AsyncSession, organization_id: str, now: dt.datetime, stale_before: dt.datetime) -> int:
    query = select(func.count()).select_from(VoiceSession).where(
        VoiceSession.organization_id == organization_id, _live(now, stale_before))
    return int(await session.scalar(query) or 0)


async def get(session: AsyncSession, organization_id: str, session_id: str) -> VoiceSession | None:
    return await session.get(VoiceSession, (organization_id, session_id))


async def by_token(session: AsyncSession, token_digest: str) -> VoiceSession | None:
    return await session.scalar(select(VoiceSession).where(VoiceSession.token_hash == token_digest))


async def claim(session: AsyncSession, organization_id: str, session_id: str, now: dt.datetime) -> bool:
    """pending -> active, once: a second connection finds it active and is refused."""
    result = await session.execute(
        update(VoiceSession)
        .where(VoiceSession.organization_id == organization_id, VoiceSession.id == session_id,
               VoiceSession.status == PENDING, VoiceSession.token_expires_at > now)
        .values(status=ACTIVE, started_at=now, heartbeat_at=now)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def save_progress(session: AsyncSession, organization_id: str, session_id: str, values: dict[str, Any]) -> None:
    await session.execute(
        update(VoiceSession).where(VoiceSession.organization_id == organization_id, VoiceSession.id == session_id).values(**values)
    )


async def page(session: AsyncSession, organization_id: str, *, user_id: str | None, status: str | None,
               limit: int, offset: int) -> list[VoiceSession]:
    query = select(VoiceSession).where(VoiceSession.organization_id == organization_id)
    if user_id is not None:
        query = query.where(VoiceSession.user_id == user_id)
    if status is not None:
        query = query.where(VoiceSession.status == status)
    query = query.order_by(VoiceSession.created_at.desc(), VoiceSession.id.desc()).limit(limit).offset(offset)
    return list((await session.scalars(query)).all())

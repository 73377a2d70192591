"""Console sessions: create on sign-in, look up per request, revoke on sign-out.

The cookie carries a random token; the table keeps its SHA-256 only, so the database never
holds a usable cookie and a revoked session is refused on its very next request."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import ConsoleSession, User
from aibroker.tenancy.tokens import hash_token

COOKIE = "aibroker_console"
LIFETIME = dt.timedelta(hours=12)  # a working day; signing in again is cheap


async def start(session: AsyncSession, *, user: User, organization_id: str | None) -> tuple[ConsoleSession, str]:
    """A new session for `user`; returns it and the cookie's token (never stored)."""
    token = "acs_" + secrets.token_urlsafe(32)
    row = ConsoleSession(id=new_id("cses"), token_hash=hash_token(token), user_id=user.id, organization_id=organization_id,
                         expires_at=utcnow() + LIFETIME)
    session.add(row)
    await session.flush()
    return row, token


async def find(session: AsyncSession, token: str | None) -> tuple[ConsoleSession, User] | None:
    """The live session and its user for a cookie's token; None when unknown, revoked or expired."""
    if not token or len(token) > 200:
        return None
    found = (await session.execute(
        select(ConsoleSession, User).join(User, User.id == ConsoleSession.user_id).where(ConsoleSession.token_hash == hash_token(token))
    )).first()
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    return row, user


async def revoke(session: AsyncSession, session_id: str) -> None:
    await session.execute(
        update(ConsoleSession).where(ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None)).values(revoked_at=utcnow())
    )


async def switch_organization(session: AsyncSession, session_id: str, organization_id: str) -> None:
    await session.execute(update(ConsoleSession).where(ConsoleSession.id == session_id).values(organization_id=organization_id))

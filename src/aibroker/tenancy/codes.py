"""Organization codes (seed 002): issued when an organization pays, 10 characters, unique.

A code is a credential (it authenticates `x-organization-code` requests where allowed, and
creates the first owner of an organization that has none): one is current at a time, it
expires (`AIBROKER_ORGANIZATION_CODE_DAYS`), and an OWNER / ADMIN rotates or revokes it."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.config import get_settings
from aibroker.errors import Conflict, InvalidRequest, NotFound
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Membership, Organization, OrganizationCode
from aibroker.tenancy.roles import Role
from aibroker.tenancy.scoped import scoped

# No 0/O, 1/I/L: a code is read aloud and typed by people. 31^10 ≈ 8e14 codes.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 10


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalize_code(code: str) -> str:
    code = (code or "").strip().upper()
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        raise InvalidRequest(f"an organization code is {LENGTH} letters and digits", param="code", code="malformed_code")
    return code


def aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite drops the zone; everything is stored in UTC.
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def is_expired(row: OrganizationCode, now: dt.datetime | None = None) -> bool:
    expires = aware(row.expires_at)
    return expires is not None and expires <= (now or utcnow())


def _valid(now: dt.datetime):  # type: ignore[no-untyped-def]
    """Codes that still work: not revoked, not expired."""
    return (OrganizationCode.revoked_at.is_(None), or_(OrganizationCode.expires_at.is_(None), OrganizationCode.expires_at > now))


async def current_code(session: AsyncSession, organization_id: str) -> OrganizationCode | None:
    return await session.scalar(
        scoped(OrganizationCode, organization_id).where(*_valid(utcnow())).order_by(OrganizationCode.created_at.desc())
    )


def _expiry(days: int | None) -> dt.datetime | None:
    days = get_settings().accounts.organization_code_days if days is None else days
    return utcnow() + dt.timedelta(days=days) if days else None


async def _new_row(session: AsyncSession, *, organization_id: str, payment_ref: str | None, days: int | None) -> OrganizationCode:
    for _ in range(5):  # a collision is astronomically rare; retry with a fresh code
        row = OrganizationCode(id=new_id("ocd"), organization_id=organization_id, code=new_code(), payment_ref=payment_ref,
                               expires_at=_expiry(days))
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
            return row
        except IntegrityError:
            continue
    raise Conflict("could not issue a unique organization code; retry")


async def issue_code(session: AsyncSession, *, organization_id: str, payment_ref: str | None) -> OrganizationCode:
    """The organization's code, created on its first payment (later payments keep a valid one)."""
    existing = await current_code(session, organization_id)
    if existing is not None:
        return existing
    return await _new_row(session, organization_id=organization_id, payment_ref=payment_ref, days=None)


async def revoke_codes(session: AsyncSession, organization_id: str) -> int:
    """Revoke every code of the organization still in force; how many were."""
    now = utcnow()
    result = await session.execute(
        update(OrganizationCode)
        .where(OrganizationCode.organization_id == organization_id, *_valid(now))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def rotate_code(session: AsyncSession, *, organization_id: str, days: int | None = None) -> OrganizationCode:
    """A fresh code; the previous one stops working (here at once, elsewhere within the auth cache)."""
    await revoke_codes(session, organization_id)
    return await _new_row(session, organization_id=organization_id, payment_ref=None, days=days)


async def find_code(session: AsyncSession, code: str) -> tuple[OrganizationCode, Organization]:
    code = normalize_code(code)
    row = (
        await session.execute(
            select(OrganizationCode, Organization)
            .join(Organization, Organization.id == OrganizationCode.organization_id)
            .where(OrganizationCode.code == code, *_valid(utcnow()))
        )
    ).first()
    if row is None:
        raise NotFound("unknown, revoked or expired organization code", param="code", code="invalid_organization_code")
    return row[0], row[1]


async def redeem(session: AsyncSession, *, code: str, user_id: str) -> Organization:
    """Make `user_id` the first OWNER of the code's organization: only of an organization
    that has no members yet (a code never adds an owner beside existing ones), and once."""
    from aibroker.tenancy.users import (
        add_member,  # users imports codes' neighbours; keep this local
    )

    row, org = await find_code(session, code)
    # The organization's row is locked (PostgreSQL): two redemptions with two codes of one
    # organization cannot both find it empty.
    await session.scalar(select(Organization.id).where(Organization.id == org.id).with_for_update())
    if await session.scalar(scoped(Membership, org.id, func.count())):
        raise Conflict(
            "this organization already has members: its code cannot add an owner (an OWNER invites new members)",
            param="code", code="organization_has_members",
        )
    # Conditional update: of two concurrent redemptions exactly one wins.
    claimed = await session.execute(
        update(OrganizationCode)
        .where(OrganizationCode.id == row.id, OrganizationCode.redeemed_at.is_(None))
        .values(redeemed_at=utcnow(), redeemed_by=user_id)
    )
    if claimed.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict("this organization code has already been used", param="code", code="code_already_used")
    await add_member(session, organization=org, user_id=user_id, role=Role.OWNER)
    return org

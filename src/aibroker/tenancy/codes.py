"""Organization codes (seed 002): issued when an organization pays, 10 characters, unique."""

from __future__ import annotations

import secrets

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import Conflict, InvalidRequest, NotFound
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Organization, OrganizationCode
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


async def current_code(session: AsyncSession, organization_id: str) -> OrganizationCode | None:
    return await session.scalar(
        scoped(OrganizationCode, organization_id).where(OrganizationCode.revoked_at.is_(None)).order_by(OrganizationCode.created_at)
    )


async def issue_code(session: AsyncSession, *, organization_id: str, payment_ref: str | None) -> OrganizationCode:
    """The organization's code, created on its first payment (later payments keep it)."""
    existing = await current_code(session, organization_id)
    if existing is not None:
        return existing
    for _ in range(5):  # a collision is astronomically rare; retry with a fresh code
        row = OrganizationCode(id=new_id("ocd"), organization_id=organization_id, code=new_code(), payment_ref=payment_ref)
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
            return row
        except IntegrityError:
            continue
    raise Conflict("could not issue a unique organization code; retry")


async def find_code(session: AsyncSession, code: str) -> tuple[OrganizationCode, Organization]:
    code = normalize_code(code)
    row = (
        await session.execute(
            select(OrganizationCode, Organization)
            .join(Organization, Organization.id == OrganizationCode.organization_id)
            .where(OrganizationCode.code == code, OrganizationCode.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        raise NotFound("unknown or revoked organization code", param="code", code="invalid_organization_code")
    return row[0], row[1]


async def redeem(session: AsyncSession, *, code: str, user_id: str) -> Organization:
    """Make `user_id` the OWNER of the code's organization. A code is redeemed once."""
    from aibroker.tenancy.users import (
        add_member,  # users imports codes' neighbours; keep this local
    )

    row, org = await find_code(session, code)
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

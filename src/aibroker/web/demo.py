"""The demo's console user (`aibroker demo` / `make run`): the OWNER of the demo organization,
with a password generated at every start. Only its argon2 hash is stored; the command prints
the password once. A new start replaces the password and ends the sessions of the old one."""

from __future__ import annotations

import secrets

from sqlalchemy import select, update

from aibroker.db import Database
from aibroker.kit.clock import utcnow
from aibroker.models import ConsoleSession, Membership, Organization, User
from aibroker.tenancy import users
from aibroker.tenancy.passwords import hash_password
from aibroker.tenancy.roles import Role

DEMO_EMAIL = "owner@demo.example.com"


def _new_password() -> str:
    # Letters and digits (the strength rules), 16+ characters of randomness.
    return f"console-{secrets.token_urlsafe(12)}-{secrets.randbelow(90) + 10}"


async def ensure_demo_user(organization_slug: str) -> tuple[str, str]:
    """(e-mail, password) of the demo organization's OWNER, made or given a new password."""
    password = _new_password()
    db = Database()
    try:
        async with db.sessions() as session:
            org = await session.scalar(select(Organization).where(Organization.slug == organization_slug))
            if org is None:
                raise RuntimeError(f"no organization '{organization_slug}'")
            user = await session.scalar(select(User).where(User.email == DEMO_EMAIL))
            if user is None:
                user = await users.create_user(session, email=DEMO_EMAIL, password=password, name="Demo owner")
            else:
                user.password_hash, user.failed_logins, user.locked_until = hash_password(password), 0, None
                await session.execute(update(ConsoleSession).where(ConsoleSession.user_id == user.id, ConsoleSession.revoked_at.is_(None))
                                      .values(revoked_at=utcnow()))
            member = await session.scalar(select(Membership).where(Membership.user_id == user.id, Membership.organization_id == org.id))
            if member is None:
                await users.add_member(session, organization=org, user_id=user.id, role=Role.OWNER)
            else:
                member.role = Role.OWNER
            await session.commit()
    finally:
        await db.dispose()
    return DEMO_EMAIL, password

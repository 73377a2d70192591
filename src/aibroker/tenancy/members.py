"""Member management: change a member's role, remove a member (or leave), list and revoke
pending invitations. Services take a session and never commit.

Rules: only an OWNER (or the platform) grants or takes away OWNER and ADMIN; nobody grants a
role above their own; the last OWNER can neither be demoted nor leave. Every change is an
event (ids and roles only: never a token). A removed member's access stops at once: the
membership is read per request (tenancy/auth.py, cached AIBROKER_AUTH_CACHE_SECONDS in other
processes), and a user left with no organization loses their refresh tokens too."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import BrokerError, NotFound, PermissionDenied
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Event, Invitation, Membership, Organization, RefreshToken, User
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import ROLE_RANK, SUPER_ADMIN, Permission, Role, parse_role
from aibroker.tenancy.scoped import scoped

PRIVILEGED = (Role.OWNER, Role.ADMIN)


class LastOwner(BrokerError):
    status_code = 409
    error_type = "conflict"


def _last_owner(what: str) -> LastOwner:
    return LastOwner(f"The organization's last OWNER cannot {what}: make another member OWNER first.", code="last_owner")


def _not_allowed(message: str) -> PermissionDenied:
    return PermissionDenied(message, code="role_not_allowed")


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def _actor_role(who: Principal) -> str:
    return SUPER_ADMIN if who.is_platform_admin or who.role == SUPER_ADMIN else (who.role or "")


async def _lock_org(session: AsyncSession, organization_id: str) -> None:
    """Serialize member changes of one organization before reading its owners, so two owners
    demoting each other cannot leave none: a no-op write takes the row lock (PostgreSQL) or
    the write lock (SQLite, whose deferred transactions would otherwise read a stale count)."""
    await session.execute(update(Organization).where(Organization.id == organization_id).values(updated_at=Organization.updated_at))


async def _membership(session: AsyncSession, organization_id: str, user_id: str) -> Membership:
    membership = await session.scalar(scoped(Membership, organization_id).where(Membership.user_id == user_id))
    if membership is None:
        raise NotFound(f"User '{user_id}' is not a member of this organization.", param="user_id", code="not_a_member")
    return membership


async def _owners(session: AsyncSession, organization_id: str) -> int:
    return int(await session.scalar(scoped(Membership, organization_id, func.count()).where(Membership.role == Role.OWNER)) or 0)


def _event(session: AsyncSession, organization_id: str, type_: str, payload: dict[str, Any]) -> None:
    session.add(Event(id=new_id("evt"), organization_id=organization_id, type=type_, payload=payload, delivery_attempts=0))


def _view(membership: Membership, user: User | None) -> dict[str, Any]:
    return {"user_id": membership.user_id, "email": user.email if user else None, "name": user.name if user else None,
            "role": membership.role}


async def change_role(session: AsyncSession, who: Principal, *, user_id: str, role: str) -> dict[str, Any]:
    """PATCH a member's role (the caller holds MANAGE_MEMBERS)."""
    new_role = parse_role(role)  # 400 unknown_role before anything is read
    actor = _actor_role(who)
    await _lock_org(session, who.organization_id)
    membership = await _membership(session, who.organization_id, user_id)
    old_role = membership.role
    if (old_role in PRIVILEGED or new_role in PRIVILEGED) and actor not in (Role.OWNER, SUPER_ADMIN):
        raise _not_allowed("Only an OWNER grants or takes away the OWNER and ADMIN roles.")
    if ROLE_RANK[new_role] > ROLE_RANK.get(actor, 0):
        raise _not_allowed(f"You cannot grant {new_role.value}: it is above your own role.")
    if old_role == Role.OWNER and new_role != Role.OWNER and await _owners(session, who.organization_id) <= 1:
        raise _last_owner("be demoted")
    user = await session.get(User, user_id)
    if old_role == new_role.value:
        return _view(membership, user)
    membership.role = new_role.value
    _event(session, who.organization_id, "member.role_changed",
           {"user_id": user_id, "old_role": old_role, "role": new_role.value, "changed_by": who.user_id})
    await session.flush()
    return _view(membership, user)


async def remove(session: AsyncSession, who: Principal, *, user_id: str) -> dict[str, Any]:
    """DELETE a membership: a member leaving (oneself, signed in), or removed by a manager."""
    leaving = who.via == "user" and who.user_id == user_id
    actor = _actor_role(who)
    if not leaving:
        who.require(Permission.MANAGE_MEMBERS)
    await _lock_org(session, who.organization_id)
    membership = await _membership(session, who.organization_id, user_id)
    if not leaving and membership.role in PRIVILEGED and actor not in (Role.OWNER, SUPER_ADMIN):
        raise _not_allowed(f"Only an OWNER removes an {membership.role}.")
    if membership.role == Role.OWNER and await _owners(session, who.organization_id) <= 1:
        raise _last_owner("leave" if leaving else "be removed")
    role = membership.role
    await session.delete(membership)
    await session.flush()
    revoked = await _end_sessions_if_orphaned(session, user_id)
    _event(session, who.organization_id, "member.left" if leaving else "member.removed",
           {"user_id": user_id, "role": role, "removed_by": None if leaving else who.user_id, "sessions_revoked": revoked})
    await session.flush()
    return {"user_id": user_id, "removed": True, "left": leaving, "role": role}


async def _end_sessions_if_orphaned(session: AsyncSession, user_id: str) -> int:
    """A user left in no organization (and not the platform's) keeps no refresh token: every
    session family ends now. Members of other organizations keep theirs, which no longer
    reach this one (the membership is checked on every request)."""
    user = await session.get(User, user_id)
    if user is None or user.is_super_admin:
        return 0
    if await session.scalar(select(Membership.id).where(Membership.user_id == user_id).limit(1)):
        return 0
    result = await session.execute(
        update(RefreshToken).where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def pending_invitations(session: AsyncSession, organization_id: str) -> list[dict[str, Any]]:
    """Invitations not accepted and not expired. Never their tokens (only hashes are stored)."""
    now = utcnow()
    rows = await session.scalars(
        scoped(Invitation, organization_id).where(Invitation.accepted_at.is_(None)).order_by(Invitation.created_at, Invitation.id)
    )
    out = []
    for inv in rows:
        expires = _aware(inv.expires_at)
        if expires is not None and expires > now:
            out.append({"id": inv.id, "email": inv.email, "role": inv.role, "invited_by": inv.invited_by,
                        "created_at": _aware(inv.created_at).isoformat(), "expires_at": expires.isoformat()})  # type: ignore[union-attr]
    return out


async def revoke_invitation(session: AsyncSession, who: Principal, *, invitation_id: str) -> dict[str, Any]:
    """A pending invitation is deleted: its token no longer finds anything. An ADMIN
    invitation is an OWNER's to revoke, as it was theirs to send."""
    inv = await session.scalar(scoped(Invitation, who.organization_id).where(Invitation.id == invitation_id))
    if inv is None or inv.accepted_at is not None:
        raise NotFound(f"No pending invitation '{invitation_id}'.", param="invitation_id", code="invitation_not_found")
    if inv.role in PRIVILEGED and _actor_role(who) not in (Role.OWNER, SUPER_ADMIN):
        raise _not_allowed(f"Only an OWNER revokes an {inv.role} invitation.")
    await session.execute(delete(Invitation).where(Invitation.id == inv.id))
    _event(session, who.organization_id, "invitation.revoked",
           {"invitation_id": inv.id, "email": inv.email, "role": inv.role, "revoked_by": who.user_id})
    await session.flush()
    return {"id": inv.id, "revoked": True}

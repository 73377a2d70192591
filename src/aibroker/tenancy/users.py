"""Users: signup, login with lockout, refresh-token rotation, logout, invitations.

Services take a session and never commit, except where a failed login must be
remembered although the request fails (the caller commits before raising)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.config import Settings
from aibroker.errors import (
    AuthenticationError,
    BrokerError,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import (
    Event,
    Invitation,
    Membership,
    Organization,
    RefreshToken,
    User,
)
from aibroker.tenancy import service as org_service
from aibroker.tenancy.passwords import check_strength, hash_password, verify_password
from aibroker.tenancy.plans import ensure_room_for_user
from aibroker.tenancy.roles import INVITABLE_ROLES, Role, parse_role
from aibroker.tenancy.scoped import scoped
from aibroker.tenancy.secrets import seal_event_data
from aibroker.tenancy.tokens import hash_token, issue_access_token, new_refresh_token

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AccountLocked(BrokerError):
    status_code = 429
    error_type = "account_locked"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds of the access token


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise InvalidRequest("a valid e-mail address is required", param="email")
    return email


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite drops the zone; everything is stored in UTC.
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


async def create_user(session: AsyncSession, *, email: str, password: str, name: str) -> User:
    email = normalize_email(email)
    check_strength(password, email=email, name=name)
    if await session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("an account with this e-mail already exists", param="email", code="email_taken")
    user = User(id=new_id("usr"), email=email, password_hash=hash_password(password), name=name.strip(),
                is_super_admin=False, failed_logins=0)
    session.add(user)
    await session.flush()
    return user


async def set_super_admin(session: AsyncSession, *, email: str, value: bool) -> tuple[User, bool]:
    """Grant or withdraw the platform SUPER_ADMIN flag; returns (user, changed). Only the
    command line calls this: no API route can grant it, whatever the caller's role."""
    user = await session.scalar(select(User).where(User.email == normalize_email(email)).with_for_update())
    if user is None:
        raise NotFound(f"no user with the e-mail '{email.strip()}'", param="email", code="user_not_found")
    changed = user.is_super_admin != value
    user.is_super_admin = value
    await session.flush()
    return user, changed


async def add_member(session: AsyncSession, *, organization: Organization, user_id: str, role: str) -> Membership:
    """A membership, within the plan's user limit."""
    if await session.scalar(scoped(Membership, organization.id, Membership.id).where(Membership.user_id == user_id)):
        raise Conflict("this user is already a member of the organization", code="already_member")
    await ensure_room_for_user(session, organization_id=organization.id, plan_name=organization.plan)
    membership = Membership(id=new_id("mem"), organization_id=organization.id, user_id=user_id, role=str(role))
    session.add(membership)
    await session.flush()
    return membership


async def signup(session: AsyncSession, *, email: str, password: str, name: str, organization_name: str | None) -> tuple[User, Organization | None]:
    """A user; with `organization_name`, also an organization (TRIAL, FREE plan) they own."""
    user = await create_user(session, email=email, password=password, name=name)
    org = None
    if organization_name:
        org = await org_service.create_organization(session, name=organization_name, plan="free")
        org.status = "trial"
        await add_member(session, organization=org, user_id=user.id, role=Role.OWNER)
    return user, org


async def issue_tokens(session: AsyncSession, settings: Settings, user: User, *, family_id: str | None = None) -> TokenPair:
    accounts = settings.accounts
    refresh = new_refresh_token()
    session.add(
        RefreshToken(
            id=new_id("rft"),
            user_id=user.id,
            token_hash=hash_token(refresh),
            family_id=family_id or new_id("fam"),
            expires_at=utcnow() + dt.timedelta(days=accounts.refresh_token_days),
        )
    )
    await session.flush()
    access = issue_access_token(
        settings.server.secret_key, user_id=user.id, super_admin=user.is_super_admin, minutes=accounts.access_token_minutes
    )
    return TokenPair(access, refresh, accounts.access_token_minutes * 60)


class LoginFailed(Exception):
    """Raised after the failed attempt was recorded; the caller commits, then raises `error`."""

    def __init__(self, error: BrokerError) -> None:
        self.error = error


async def login(session: AsyncSession, settings: Settings, *, email: str, password: str) -> TokenPair:
    user = await verify_login(session, settings, email=email, password=password)
    return await issue_tokens(session, settings, user)


async def verify_login(session: AsyncSession, settings: Settings, *, email: str, password: str) -> User:
    """The user whose e-mail and password these are, with the lockout rules (the API's login
    and the console's sign-in share them). Raises LoginFailed / AccountLocked otherwise."""
    accounts = settings.accounts
    user = await session.scalar(select(User).where(User.email == (email or "").strip().lower()).with_for_update())
    now = utcnow()
    locked_until = _aware(user.locked_until) if user else None
    if user is not None and locked_until and locked_until > now:
        retry = int((locked_until - now).total_seconds()) + 1
        raise AccountLocked(
            f"Too many failed logins: the account is locked for {retry // 60 + 1} more minute(s).",
            code="account_locked", headers={"Retry-After": str(retry)},
        )
    if not verify_password(user.password_hash if user else None, password or "") or user is None:
        if user is not None:
            user.failed_logins += 1
            if user.failed_logins >= accounts.max_failed_logins:
                user.failed_logins = 0
                user.locked_until = now + dt.timedelta(minutes=accounts.lockout_minutes)
                raise LoginFailed(AccountLocked(
                    f"Too many failed logins: the account is locked for {accounts.lockout_minutes} minutes.",
                    code="account_locked", headers={"Retry-After": str(accounts.lockout_minutes * 60)},
                ))
        raise LoginFailed(AuthenticationError("Incorrect e-mail or password.", code="invalid_credentials"))
    user.failed_logins = 0
    user.locked_until = None
    return user


async def rotate_refresh_token(session: AsyncSession, settings: Settings, token: str) -> TokenPair:
    row = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_token(token or "")).with_for_update())
    if row is None:
        raise AuthenticationError("Invalid refresh token.", code="invalid_refresh_token")
    if row.revoked_at is not None:
        # A replaced token came back: someone holds a copy. End the whole session family.
        await session.execute(
            update(RefreshToken).where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None)).values(revoked_at=utcnow())
        )
        raise LoginFailed(AuthenticationError("This refresh token was already used; sign in again.", code="refresh_token_reused"))
    if _aware(row.expires_at) <= utcnow():
        raise AuthenticationError("The refresh token has expired; sign in again.", code="refresh_token_expired")
    row.revoked_at = utcnow()
    user = await session.get(User, row.user_id)
    if user is None:
        raise AuthenticationError("Invalid refresh token.", code="invalid_refresh_token")
    return await issue_tokens(session, settings, user, family_id=row.family_id)


async def logout(session: AsyncSession, token: str) -> None:
    """Revoke the refresh token's whole family (idempotent)."""
    row = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_token(token or "")))
    if row is not None:
        await session.execute(
            update(RefreshToken).where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None)).values(revoked_at=utcnow())
        )


async def memberships_of(session: AsyncSession, user_id: str) -> list[tuple[Membership, Organization]]:
    rows = await session.execute(
        select(Membership, Organization)
        .join(Organization, Organization.id == Membership.organization_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at)
    )
    return [(m, o) for m, o in rows.all()]


# -- invitations ----------------------------------------------------------------------


async def invite(
    session: AsyncSession, settings: Settings, *, organization: Organization, email: str, role: str, inviter_role: str | None, invited_by: str | None, accept_url: str | None
) -> tuple[Invitation, str]:
    """An invitation; returns it and the raw token (shown once, stored as a hash)."""
    email = normalize_email(email)
    parsed = parse_role(role)
    if parsed not in INVITABLE_ROLES:
        raise InvalidRequest(f"cannot invite as {parsed}; one of {', '.join(INVITABLE_ROLES)}", param="role")
    if parsed == Role.ADMIN and inviter_role not in (Role.OWNER, "SUPER_ADMIN", None):
        raise PermissionDenied("only an OWNER can invite an ADMIN", code="role_not_allowed")
    await ensure_room_for_user(session, organization_id=organization.id, plan_name=organization.plan)
    token = new_refresh_token().replace("abr_", "abi_", 1)
    invitation = Invitation(
        id=new_id("inv"), organization_id=organization.id, email=email, role=parsed.value, token_hash=hash_token(token),
        invited_by=invited_by, expires_at=utcnow() + dt.timedelta(days=settings.accounts.invitation_days),
    )
    session.add(invitation)
    # No mail server here: the event is the outbox the platform webhook delivers (it mails the
    # invitee). The link carries the token, so it is sealed apart from the payload: only the
    # webhook delivery carries it; /api/events (VIEW_USAGE) and logs never do.
    event = Event(id=new_id("evt"), organization_id=organization.id, type="invitation.created",
                  payload={"invitation_id": invitation.id, "email": email, "role": parsed.value, "has_link": bool(accept_url)})
    if accept_url:
        event.sealed_payload, event.key_id = seal_event_data(event.id, {"link": f"{accept_url}?token={token}"}, settings.server.secret_key)
    session.add(event)
    await session.flush()
    return invitation, token


async def accept_invitation(session: AsyncSession, *, token: str, password: str | None, name: str | None, current_user_id: str | None) -> tuple[User, Organization, bool]:
    """Join the invitation's organization. An existing account signs in with its token or
    password; a new e-mail needs `password` (and `name`). Returns (user, org, created)."""
    invitation = await session.scalar(select(Invitation).where(Invitation.token_hash == hash_token(token or "")).with_for_update())
    if invitation is None:
        raise NotFound("unknown invitation token", code="invalid_invitation")
    if invitation.accepted_at is not None:
        raise Conflict("this invitation has already been accepted", code="invitation_used")
    if _aware(invitation.expires_at) <= utcnow():
        raise InvalidRequest("this invitation has expired; ask for a new one", code="invitation_expired")
    organization = await session.get(Organization, invitation.organization_id)
    assert organization is not None
    user = await session.scalar(select(User).where(User.email == invitation.email))
    created = False
    if user is None:
        if not password:
            raise InvalidRequest("a password is required to create your account", param="password")
        user = await create_user(session, email=invitation.email, password=password, name=name or invitation.email.split("@")[0])
        created = True
    elif current_user_id != user.id and not (password and verify_password(user.password_hash, password)):
        raise AuthenticationError("sign in as the invited user (or send that account's password) to accept", code="invalid_credentials")
    await add_member(session, organization=organization, user_id=user.id, role=invitation.role)
    invitation.accepted_at = utcnow()
    return user, organization, created


async def count_members(session: AsyncSession, organization_id: str) -> int:
    return int(await session.scalar(scoped(Membership, organization_id, func.count())) or 0)

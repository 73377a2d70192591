"""Members, invitations, organization settings and organization codes (seed 002)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.deps import db_session
from aibroker.errors import InvalidRequest, NotFound, PermissionDenied
from aibroker.gateway.http import authenticate, services
from aibroker.kit.clock import utcnow
from aibroker.models import Membership, Organization, User
from aibroker.tenancy import codes, users
from aibroker.tenancy.auth import Principal, bearer_token
from aibroker.tenancy.roles import CODE_MANAGER_ROLES, Permission
from aibroker.tenancy.scoped import scoped
from aibroker.tenancy.tokens import looks_like_jwt, verify_access_token
from aibroker.tenancy.zones import valid_timezone

router = APIRouter(tags=["Organizations and members"])


class InvitationCreate(BaseModel):
    email: str = Field(max_length=320, description="Who is invited.")
    role: str = Field(default="MEMBER", max_length=20, description="ADMIN, AGENT, DISTRIBUTOR or MEMBER.")
    accept_url: str | None = Field(default=None, max_length=500, description="Your app's page that posts the token to /api/invitations/accept.")


class InvitationAccept(BaseModel):
    token: str = Field(max_length=200, description="The invitation token.")
    password: str | None = Field(default=None, max_length=256, description="New accounts: their password. Existing ones: theirs, unless signed in.")
    name: str | None = Field(default=None, max_length=200)


class CodeBody(BaseModel):
    code: str = Field(max_length=40, description="The 10-character organization code.")


class CodeRotate(BaseModel):
    expires_in_days: int | None = Field(default=None, ge=1, le=36500,
                                        description="Days the new code stays valid (default AIBROKER_ORGANIZATION_CODE_DAYS).")


class CreateFromCode(BaseModel):
    code: str = Field(max_length=40, description="The 10-character organization code received on payment.")
    email: str | None = Field(default=None, max_length=320, description="New account (when not signed in).")
    password: str | None = Field(default=None, max_length=256)
    name: str | None = Field(default=None, max_length=200)


class OrganizationUpdate(BaseModel):
    allow_code_auth: bool | None = Field(default=None, description="Accept `x-organization-code` header authentication.")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, min_length=1, max_length=64,
                                 description="IANA time zone (e.g. America/Sao_Paulo): the day and hour boundaries of analytics and spend alerts.")


async def _member_of(request: Request, organization_id: str, permission: str) -> Principal:
    """The caller acting for `organization_id` (403 for another organization's credentials)."""
    return (await authenticate(request, acting_for=organization_id)).require(permission)


def _signed_in_user(request: Request) -> str | None:
    token = bearer_token(request.headers.get("authorization"))
    if token and looks_like_jwt(token):
        return verify_access_token(services(request).settings.server.secret_key, token).user_id
    return None


def _org(org: Organization) -> dict:
    return {"id": org.id, "name": org.name, "slug": org.slug, "plan": org.plan.upper(), "status": org.status.upper(),
            "allow_code_auth": org.allow_code_auth, "timezone": org.timezone}


async def _storage(session: AsyncSession, organization_id: str) -> dict:
    """Seed 002's storage in use (recordings): exact bytes, and GB for the seed's field."""
    from sqlalchemy import select

    from aibroker.models import StorageUsage

    row = (await session.execute(select(StorageUsage.used_bytes, StorageUsage.recordings)
                                 .where(StorageUsage.organization_id == organization_id))).first()
    used, recordings = (int(row[0]), int(row[1])) if row else (0, 0)
    return {"currentStorageGB": round(used / 1024**3, 6), "current_storage_bytes": used, "current_recordings": recordings}


@router.get("/api/organizations/{organization_id}")
async def get_organization(organization_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """The organization (its plan, status and settings)."""
    who = await _member_of(request, organization_id, Permission.VIEW_USAGE)
    org = await session.get(Organization, who.organization_id)
    return {**_org(org), **await _storage(session, who.organization_id)}  # type: ignore[arg-type]


@router.patch("/api/organizations/{organization_id}")
async def update_organization(organization_id: str, body: OrganizationUpdate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Change the organization's name, time zone or whether it accepts organization-code authentication."""
    who = await _member_of(request, organization_id, Permission.MANAGE_ORGANIZATION)
    org = await session.get(Organization, who.organization_id)
    assert org is not None
    if body.allow_code_auth is not None:
        org.allow_code_auth = body.allow_code_auth
    if body.name is not None:
        org.name = body.name.strip()
    if body.timezone is not None:
        org.timezone = valid_timezone(body.timezone)
    org.updated_at = utcnow()
    await session.commit()
    services(request).auth.forget()
    return _org(org)


@router.get("/api/organizations/{organization_id}/members")
async def list_members(organization_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """The organization's members and their roles."""
    who = await _member_of(request, organization_id, Permission.MANAGE_MEMBERS)
    rows = await session.execute(
        scoped(Membership, who.organization_id, Membership, User).join(User, User.id == Membership.user_id).order_by(Membership.created_at)
    )
    return {"data": [{"user_id": u.id, "email": u.email, "name": u.name, "role": m.role} for m, u in rows.all()]}


@router.post("/api/organizations/{organization_id}/invitations", status_code=201)
async def create_invitation(organization_id: str, body: InvitationCreate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Invite someone by e-mail. The token is returned once; an `invitation.created` event
    (the mail outbox) carries the accept link."""
    who = await _member_of(request, organization_id, Permission.MANAGE_MEMBERS)
    if body.accept_url is not None and not body.accept_url.startswith(("http://", "https://")):
        raise InvalidRequest("accept_url must be an http(s) URL", param="accept_url")
    org = await session.get(Organization, who.organization_id)
    assert org is not None
    invitation, token = await users.invite(
        session, services(request).settings, organization=org, email=body.email, role=body.role,
        inviter_role=who.role, invited_by=who.user_id, accept_url=body.accept_url,
    )
    await session.commit()
    return {"id": invitation.id, "email": invitation.email, "role": invitation.role, "expires_at": invitation.expires_at, "token": token}


@router.post("/api/invitations/accept")
async def accept_invitation(body: InvitationAccept, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Join an organization with an invitation token (creating the account if needed). Answers with tokens."""
    user, org, created = await users.accept_invitation(
        session, token=body.token, password=body.password, name=body.name, current_user_id=_signed_in_user(request)
    )
    pair = await users.issue_tokens(session, services(request).settings, user)
    await session.commit()
    services(request).auth.forget()
    return {"organization": _org(org), "user_id": user.id, "created_account": created,
            "access_token": pair.access_token, "refresh_token": pair.refresh_token, "token_type": "bearer"}


async def _code_manager(request: Request, organization_id: str) -> Principal:
    """The caller, when it is the organization's OWNER or ADMIN (or the platform): the code is a credential."""
    who = await authenticate(request, acting_for=organization_id)
    if who.role not in CODE_MANAGER_ROLES:
        raise PermissionDenied("Only an OWNER or ADMIN can read or change the organization code.", code="role_not_allowed")
    return who


def _code_view(row) -> dict:  # type: ignore[no-untyped-def]
    return {"code": row.code, "created_at": row.created_at, "expires_at": codes.aware(row.expires_at), "redeemed": row.redeemed_at is not None}


@router.get("/api/organizations/{organization_id}/code")
async def get_code(organization_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """The organization's current code (OWNER / ADMIN only); 404 when it has none in force."""
    who = await _code_manager(request, organization_id)
    row = await codes.current_code(session, who.organization_id)
    if row is None:
        raise NotFound("this organization has no organization code in force", code="no_organization_code")
    return _code_view(row)


@router.post("/api/organizations/{organization_id}/code/rotate")
async def rotate_code(organization_id: str, request: Request, body: CodeRotate | None = None,
                      session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """A new organization code (OWNER / ADMIN only); the previous one stops authenticating and
    redeeming at once here, within AIBROKER_AUTH_CACHE_SECONDS on other processes."""
    who = await _code_manager(request, organization_id)
    row = await codes.rotate_code(session, organization_id=who.organization_id, days=body.expires_in_days if body else None)
    view = _code_view(row)
    await session.commit()
    services(request).auth.forget()
    return view


@router.delete("/api/organizations/{organization_id}/code", status_code=204)
async def revoke_code(organization_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> None:
    """Revoke the organization code (OWNER / ADMIN only): it no longer authenticates nor redeems."""
    who = await _code_manager(request, organization_id)
    if not await codes.revoke_codes(session, who.organization_id):
        raise NotFound("this organization has no organization code in force", code="no_organization_code")
    await session.commit()
    services(request).auth.forget()


@router.post("/api/organizations/validate-code")
@router.post("/api/payments/validate-code", include_in_schema=False)
async def validate_code(body: CodeBody, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Whether an organization code is valid, and the organization it names."""
    row, org = await codes.find_code(session, body.code)
    return {"valid": True, "code": row.code, "redeemed": row.redeemed_at is not None, "expires_at": codes.aware(row.expires_at),
            "organization": {"id": org.id, "name": org.name, "plan": org.plan.upper(), "status": org.status.upper()}}


@router.post("/api/organizations/create-from-code", status_code=201)
async def create_from_code(body: CreateFromCode, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Take ownership of a paid organization with its code: the signed-in user (or a new
    account from `email`/`password`/`name`) becomes its first OWNER. Only an organization
    without members can be taken (otherwise 409 `organization_has_members`); a code works here once."""
    codes.normalize_code(body.code)
    user_id = _signed_in_user(request)
    user = await session.get(User, user_id) if user_id else None
    if user is None:
        if not body.email or not body.password:
            raise InvalidRequest("sign in, or send email and password to create the owner account", param="email")
        user = await users.create_user(session, email=body.email, password=body.password, name=body.name or "")
    org = await codes.redeem(session, code=body.code, user_id=user.id)
    pair = await users.issue_tokens(session, services(request).settings, user)
    await session.commit()
    services(request).auth.forget()
    return {"organization": _org(org), "user_id": user.id, "role": "OWNER",
            "access_token": pair.access_token, "refresh_token": pair.refresh_token, "token_type": "bearer"}

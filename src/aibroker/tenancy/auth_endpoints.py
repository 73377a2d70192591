"""Sign-up, login, token refresh, logout and "who am I" (seed 002's auth service)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from aibroker.deps import db_session
from aibroker.errors import AuthenticationError, PermissionDenied
from aibroker.gateway.http import authenticate, services
from aibroker.models import User
from aibroker.tenancy import users
from aibroker.tenancy.auth import ORG_HEADER, bearer_token
from aibroker.tenancy.roles import permissions_for
from aibroker.tenancy.tokens import looks_like_jwt, verify_access_token

router = APIRouter(prefix="/api/auth", tags=["Accounts"])


class SignupRequest(BaseModel):
    email: str = Field(description="The account's e-mail (its login).", max_length=320)
    password: str = Field(description="At least 10 characters, letters and digits, not containing the e-mail.", max_length=256)
    name: str = Field(default="", max_length=200, description="Display name.")
    organization_name: str | None = Field(default=None, max_length=200, description="Also create this organization (TRIAL, FREE plan) with you as OWNER.")


class LoginRequest(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=200, description="The refresh token from login (single use: a new one is returned).")


class TokenResponse(BaseModel):
    access_token: str = Field(description="JWT (HS256), valid 15 minutes. Send as 'Authorization: Bearer <token>'.")
    refresh_token: str = Field(description="Opaque, valid 30 days, single use.")
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


def _tokens(pair: users.TokenPair) -> dict:
    return {"access_token": pair.access_token, "refresh_token": pair.refresh_token, "token_type": "bearer", "expires_in": pair.expires_in}


def _user(user: User) -> dict:
    return {"id": user.id, "email": user.email, "name": user.name, "is_super_admin": user.is_super_admin, "created_at": user.created_at}


@router.post("/signup", status_code=201)
async def signup(body: SignupRequest, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Create an account (and, with `organization_name`, an organization you own). Answers with tokens."""
    user, org = await users.signup(
        session, email=body.email, password=body.password, name=body.name, organization_name=body.organization_name
    )
    pair = await users.issue_tokens(session, services(request).settings, user)
    await session.commit()  # before answering: the client may use the account at once
    organization = {"id": org.id, "name": org.name, "slug": org.slug, "plan": org.plan.upper(), "status": org.status.upper()} if org else None
    return {"user": _user(user), "organization": organization, **_tokens(pair)}


@router.post("/login", response_model=TokenResponse)
async def login(body: LoginRequest, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Exchange e-mail and password for tokens. After 5 failures in a row the account locks for 15 minutes (429)."""
    try:
        pair = await users.login(session, services(request).settings, email=body.email, password=body.password)
    except users.LoginFailed as failed:
        await session.commit()  # remember the failed attempt although the request fails
        raise failed.error from None
    await session.commit()
    return _tokens(pair)


@router.post("/refresh", response_model=TokenResponse)
async def refresh(body: RefreshRequest, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """New tokens for a refresh token. The old refresh token stops working; reusing it ends the session."""
    try:
        pair = await users.rotate_refresh_token(session, services(request).settings, body.refresh_token)
    except users.LoginFailed as failed:
        await session.commit()
        raise failed.error from None
    await session.commit()
    return _tokens(pair)


@router.post("/logout", status_code=204)
async def logout(body: RefreshRequest, session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """End the session the refresh token belongs to (access tokens expire on their own)."""
    await users.logout(session, body.refresh_token)
    await session.commit()
    return Response(status_code=204)


@router.get("/me")
async def me(request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """The signed-in user, their memberships (with each role's permissions), and the permissions
    that apply to the current organization (`x-organization-id`, or the only membership)."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None or not looks_like_jwt(token):
        # API keys and codes: describe the principal they map to.
        who = await authenticate(request)
        return {"user": None, "memberships": [], "organization_id": who.organization_id, "role": who.role,
                "permissions": sorted(who.permissions), "via": who.via}
    claims = verify_access_token(services(request).settings.server.secret_key, token)
    user = await session.get(User, claims.user_id)
    if user is None:
        raise AuthenticationError("This user no longer exists.", code="invalid_token")
    rows = await users.memberships_of(session, user.id)
    memberships = [
        {"organization_id": o.id, "organization_name": o.name, "slug": o.slug, "plan": o.plan.upper(), "status": o.status.upper(),
         "role": m.role, "permissions": sorted(permissions_for(m.role, super_admin=user.is_super_admin))}
        for m, o in rows
    ]
    wanted = request.headers.get(ORG_HEADER)
    current = [m for m in memberships if m["organization_id"] == wanted or m["slug"] == wanted] if wanted else memberships
    if wanted and not current and not user.is_super_admin:
        raise PermissionDenied("You are not a member of this organization.", code="not_a_member")
    current_one = current[0] if len(current) == 1 else None
    permissions = sorted(permissions_for(None, super_admin=True)) if user.is_super_admin else (current_one["permissions"] if current_one else [])
    return {"user": _user(user), "memberships": memberships, "organization_id": current_one["organization_id"] if current_one else None,
            "role": "SUPER_ADMIN" if user.is_super_admin else (current_one["role"] if current_one else None), "permissions": permissions, "via": "user"}

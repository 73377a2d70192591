"""FastAPI dependencies shared by the platform API (not the hot path)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.errors import AuthenticationError, PermissionDenied
from aibroker.gateway.http import authenticate, services
from aibroker.models import User
from aibroker.tenancy.auth import Principal, bearer_token
from aibroker.tenancy.tokens import looks_like_jwt, verify_access_token


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, committed once at the end (rolled back on error).
    Declare it with `Depends(db_session, scope="function")`: the commit then happens before
    the response is sent, so a client never reads an answer about data not yet committed."""
    async with services(request).db.sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def require_admin(request: Request) -> None:
    """The platform service key (AIBROKER_ADMIN_TOKEN), or the access token (JWT) of a user who
    is SUPER_ADMIN. The flag is read from the database on every call, never from the token's
    claims: a demotion (`aibroker user demote`) takes effect at once, even for issued tokens."""
    token = bearer_token(request.headers.get("authorization"))
    found = services(request)
    if found.auth.is_admin_token(token):
        return
    if token is not None and looks_like_jwt(token):
        claims = verify_access_token(found.settings.server.secret_key, token)  # 401 when forged or expired
        async with found.db.sessions() as session:
            is_super_admin = await session.scalar(select(User.is_super_admin).where(User.id == claims.user_id))
        if is_super_admin is None:
            raise AuthenticationError("This user no longer exists.", code="invalid_token")
        if not is_super_admin:
            raise PermissionDenied(
                "This route is for the platform administrator: a SUPER_ADMIN user or the platform service key.",
                code="super_admin_required",
            )
        return
    raise AuthenticationError(
        "This route needs the platform service key (Authorization: Bearer <AIBROKER_ADMIN_TOKEN>) "
        "or a SUPER_ADMIN user's access token."
    )


async def principal(request: Request) -> Principal:
    return await authenticate(request)


def require(permission: str) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency: the authenticated caller, or 403 when its role lacks `permission`.

        who: Principal = Depends(require(Permission.MANAGE_KEYS))"""

    async def dependency(request: Request) -> Principal:
        return await authenticate(request, permission=permission)

    dependency.__name__ = f"require_{str(permission).lower()}"
    return dependency

"""FastAPI dependencies shared by the platform API (not the hot path)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.errors import AuthenticationError
from aibroker.gateway.http import authenticate, services
from aibroker.tenancy.auth import Principal, bearer_token


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
    """The platform service key (AIBROKER_ADMIN_TOKEN)."""
    token = bearer_token(request.headers.get("authorization"))
    if not services(request).auth.is_admin_token(token):
        raise AuthenticationError("This route needs the platform service key (Authorization: Bearer <AIBROKER_ADMIN_TOKEN>).")


async def principal(request: Request) -> Principal:
    return await authenticate(request)


def require(permission: str) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency: the authenticated caller, or 403 when its role lacks `permission`.

        who: Principal = Depends(require(Permission.MANAGE_KEYS))"""

    async def dependency(request: Request) -> Principal:
        return await authenticate(request, permission=permission)

    dependency.__name__ = f"require_{str(permission).lower()}"
    return dependency

"""Who may see every organization: the platform service key or a SUPER_ADMIN user."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request

from aibroker.gateway.http import services
from aibroker.models import User
from aibroker.tenancy.auth import bearer_token
from aibroker.tenancy.tokens import looks_like_jwt, verify_access_token


async def is_platform_admin(request: Request) -> bool:
    """True for AIBROKER_ADMIN_TOKEN or a SUPER_ADMIN's access token (the flag read from the
    database, so a demotion applies at once). Anything else is left to tenant authentication."""
    token = bearer_token(request.headers.get("authorization"))
    found = services(request)
    if found.auth.is_admin_token(token):
        return True
    if token is None or token.startswith("abk_") or not looks_like_jwt(token):
        return False
    try:
        claims = verify_access_token(found.settings.server.secret_key, token)
    except Exception:  # noqa: BLE001 - a bad token: tenant authentication answers 401
        return False
    async with found.db.sessions() as session:
        return bool(await session.scalar(select(User.is_super_admin).where(User.id == claims.user_id)))

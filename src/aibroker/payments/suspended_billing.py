"""Paying is how a suspended organization comes back (suspension.py), so its billing users
(OWNER, ADMIN, DISTRIBUTOR, signed in) still reach checkout and their subscription while every
other route answers 403 `organization_inactive`. Only `suspended`: an organization the platform
cancelled stays closed."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request

from aibroker.errors import PermissionDenied
from aibroker.gateway.http import authenticate, services
from aibroker.models import Membership, Organization
from aibroker.tenancy.auth import ORG_HEADER, Principal, bearer_token
from aibroker.tenancy.roles import Permission, permissions_for
from aibroker.tenancy.tokens import looks_like_jwt, verify_access_token

BILLING_ONLY = frozenset({Permission.MANAGE_BILLING})


async def billing_caller(request: Request, acting_for: str | None) -> Principal:
    """The caller, holding MANAGE_BILLING; a suspended organization's billing user too."""
    try:
        return (await authenticate(request, acting_for=acting_for)).require(Permission.MANAGE_BILLING)
    except PermissionDenied as refused:
        if refused.code != "organization_inactive":
            raise
        who = await _suspended_member(request, acting_for or request.headers.get(ORG_HEADER))
        if who is None:
            raise
        return who


async def _suspended_member(request: Request, acting_for: str | None) -> Principal | None:
    token = bearer_token(request.headers.get("authorization"))
    if token is None or not looks_like_jwt(token):
        return None  # API keys and codes never pay
    svc = services(request)
    user_id = verify_access_token(svc.settings.server.secret_key, token).user_id
    query = (select(Membership.role, Organization).join(Organization, Organization.id == Membership.organization_id)
             .where(Membership.user_id == user_id))
    if acting_for:
        query = query.where((Organization.id == acting_for) | (Organization.slug == acting_for))
    async with svc.db.sessions() as session:
        rows = (await session.execute(query)).all()
    if len(rows) != 1:
        return None
    role, org = rows[0]
    if org.status != "suspended" or Permission.MANAGE_BILLING not in permissions_for(role):
        return None
    return Principal(organization_id=org.id, organization_slug=org.slug, plan=org.plan, margin_bps=org.margin_bps,
                     timezone=org.timezone, user_id=user_id, role=role, permissions=BILLING_ONLY, via="user")

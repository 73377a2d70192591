"""The signed-in console member as the services' caller (a Principal), for the AI pages.

The console calls the same services the JSON API does; they take a Principal. This is the one
a user's access token gets for the same membership (tenancy.auth): the organization, the
member's user id, role and permissions, `via="user"`. Not a page module (no router)."""

from __future__ import annotations

from starlette.requests import Request

from aibroker.catalog.registry import CHAT, ModelEntry
from aibroker.errors import PermissionDenied
from aibroker.gateway.http import services
from aibroker.tenancy.auth import ACTIVE_STATUSES, Principal
from aibroker.tenancy.roles import SUPER_ADMIN
from aibroker.web.auth import ConsoleUser


def principal_of(user: ConsoleUser) -> Principal:
    """The member's Principal in the organization the console is looking at."""
    org = user.organization
    if org is None:  # page() has refused this already; kept for direct callers
        raise PermissionDenied("You are not a member of any organization yet.", code="no_organization")
    if org.status not in ACTIVE_STATUSES:
        raise PermissionDenied(f"The organization is {org.status}.", code="organization_inactive")
    return Principal(
        organization_id=org.id, organization_slug=org.slug, plan=org.plan, margin_bps=org.margin_bps,
        timezone=org.timezone, user_id=user.user.id, is_platform_admin=user.is_super_admin,
        role=SUPER_ADMIN if user.is_super_admin else user.role, permissions=user.permissions, via="user",
    )


def models_of_kind(request: Request, kind: str = CHAT) -> list[ModelEntry]:
    """The catalog's enabled models of `kind`, by id (the playground's and the call's pickers)."""
    return sorted((e for e in services(request).catalog.available() if e.kind == kind), key=lambda e: e.id)

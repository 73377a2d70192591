"""The signed-in console member as the AI services' caller, for the AI pages. Not a page
module (no router).

`ConsoleUser.principal()` is the Principal a user's access token gets for the same
membership. The AI pages spend the wallet, so they also refuse a suspended or cancelled
organization, as the API's authentication does for its keys and users (403
`organization_inactive`)."""

from __future__ import annotations

from starlette.requests import Request

from aibroker.catalog.registry import CHAT, ModelEntry
from aibroker.errors import PermissionDenied
from aibroker.gateway.http import services
from aibroker.tenancy.auth import ACTIVE_STATUSES, Principal
from aibroker.web.auth import ConsoleUser


def principal_of(user: ConsoleUser) -> Principal:
    """The member's Principal in the organization the console is looking at."""
    principal = user.principal()
    status = user.organization.status if user.organization is not None else None
    if status not in ACTIVE_STATUSES:
        raise PermissionDenied(f"The organization is {status}.", code="organization_inactive")
    return principal


def models_of_kind(request: Request, kind: str = CHAT) -> list[ModelEntry]:
    """The catalog's enabled models of `kind`, by id (the playground's and the call's pickers)."""
    return sorted((e for e in services(request).catalog.available() if e.kind == kind), key=lambda e: e.id)

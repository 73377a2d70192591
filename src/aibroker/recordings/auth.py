"""Who may do what with recordings. Uploading and processing run AI calls, so they need
USE_AI_BROKER; reading needs USE_AI_BROKER or VIEW_USAGE; deleting is for OWNER and ADMIN
(and the platform), machine credentials (API keys), or the user who uploaded the recording.
`x-organization-code` (+ `x-user-id`) works wherever the organization enables code auth."""

from __future__ import annotations

from starlette.requests import Request

from aibroker.errors import PermissionDenied
from aibroker.gateway.http import authenticate
from aibroker.models import Recording
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import SUPER_ADMIN, Permission, Role

MANAGERS = frozenset({Role.OWNER, Role.ADMIN, SUPER_ADMIN})


async def uploader(request: Request) -> Principal:
    """The caller, allowed to upload and process recordings (USE_AI_BROKER)."""
    return await authenticate(request, permission=Permission.USE_AI_BROKER)


async def reader(request: Request) -> Principal:
    """The caller, allowed to read the organization's recordings."""
    principal = await authenticate(request, permission=None)
    if not (principal.can(Permission.USE_AI_BROKER) or principal.can(Permission.VIEW_USAGE)):
        principal.require(Permission.VIEW_USAGE)
    return principal


def check_delete(principal: Principal, recording: Recording) -> None:
    if principal.via in ("api_key", "admin") and principal.role is None or principal.role in MANAGERS and principal.via != "code":
        return
    if principal.user_id and principal.user_id == recording.user_id:
        return
    raise PermissionDenied(
        "Only an OWNER or ADMIN, an API key, or the user who uploaded it may delete this recording.",
        code="recording_delete_denied",
    )

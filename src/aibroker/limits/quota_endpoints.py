"""GET /api/ai/quota: where the caller stands against its plan's and key's limits."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from aibroker.gateway.context import CallContext
from aibroker.gateway.http import JSONResponse, authenticate, request_id, services
from aibroker.tenancy.roles import Permission

router = APIRouter(prefix="/api/ai", tags=["Usage"])


@router.get("/quota")
async def quota(request: Request) -> Response:
    """Quotas (monthly / daily tokens and requests: limit, used, remaining, resets_at,
    percent_used) and rate limits (per minute / hour) of the caller's organization and API
    key, under its plan. `?user=` adds that end user's per-user limits."""
    principal = await authenticate(request, permission=Permission.VIEW_USAGE)
    ctx = CallContext(
        request_id=request_id(request), principal=principal, endpoint="quota",
        user_id=request.query_params.get("user") or principal.user_id,
    )
    return JSONResponse(await services(request).limits.report(ctx))

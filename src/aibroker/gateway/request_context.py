"""What an AI request is for, read the same way on every AI route.

/v1/chat/completions, /v1/embeddings, /v1/messages and /api/ai/broker all name the
feature, the routing profile and group, the end user and the cache opt-out alike, so
a request is routed, limited and cached the same whichever route it came through.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from aibroker.billing.batch import Settle
from aibroker.cache.keys import no_store
from aibroker.catalog.registry import ModelEntry
from aibroker.errors import BrokerError, InvalidRequest
from aibroker.gateway.context import CallContext
from aibroker.gateway.http import request_id, services
from aibroker.gateway.usage_rows import usage_row
from aibroker.ops import metrics
from aibroker.providers.base import Usage
from aibroker.routing.router import routing_fields
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.routing_authority import ProfileNotAllowed, authorize

FEATURE_HEADER = "x-aibroker-feature"


def requested_feature(headers: Any, named: Any, principal: Principal, fallback: str | None = None) -> str | None:
    """The `x-aibroker-feature` header, else the feature the body names, else the key's
    default feature, else `fallback`."""
    if named is not None and not isinstance(named, str):
        raise InvalidRequest("'feature' must be a string (a feature slug).", param="feature")
    return headers.get(FEATURE_HEADER) or named or principal.default_feature or fallback


def call_context(
    request: Request,
    principal: Principal,
    endpoint: str,
    fields: dict[str, Any],
    *,
    fallback_feature: str | None = None,
    user_id: str | None = None,
) -> CallContext:
    """The CallContext of one AI request. `fields` holds the body's broker fields (`feature`,
    `profile`, `group`, `user`, `user_name`, `cache`, `aibroker`); `profile` / `group` are removed from
    it, since they are never sent upstream. `user_id` overrides the body's `user` (routes
    whose body names the end user elsewhere)."""
    if not isinstance(fields.get("aibroker") or {}, dict):
        raise InvalidRequest("'aibroker' must be an object, e.g. {\"include_votes\": true}.", param="aibroker")
    profile, group = routing_fields(request.headers, fields)
    ctx = CallContext(
        request_id=request_id(request),
        principal=principal,
        endpoint=endpoint,
        feature=requested_feature(request.headers, fields.get("feature"), principal, fallback_feature),
        # Under an organization code, `x-user-id` names a member (checked at auth): the usage is theirs.
        user_id=(principal.via == "code" and principal.user_id) or user_id or fields.get("user") or principal.user_id,
        user_name=fields.get("user_name"),
        profile=profile,
        group=group,
        # Either opt-out covers every call the request makes (consensus votes, syntheses).
        no_store=no_store(request.headers.get("cache-control")) or fields.get("cache") is False,
    )
    try:  # the caller's credential says which profile / group it runs with (routing_authority)
        ctx.profile, ctx.group = authorize(principal, profile, group, services(request).settings.accounts.role_profiles)
    except ProfileNotAllowed as exc:
        _record_refusal(request, ctx, fields.get("model"), exc)
        raise
    return ctx


def _record_refusal(request: Request, ctx: CallContext, model: Any, exc: BrokerError) -> None:
    """A usage record with status "refused" (as the gateway writes for its refusals), committed
    with the money writer's next batch; nothing is charged."""
    svc = services(request)
    entry: ModelEntry | None = None
    try:
        entry = svc.catalog.resolve(model) if isinstance(model, str) and model not in ("auto", "aibroker/auto") else None
        entry = entry or svc.catalog.get(svc.gateway.default_model())
    except BrokerError:
        entry = None
    entry = entry or ModelEntry(id=str(model or "none")[:200], provider="none", name=str(model or "none")[:200])
    row = usage_row(ctx, entry, Usage(), None, status="refused", attempt=0, upstream_ms=0, error=exc)
    metrics.child(metrics.REQUESTS, ctx.endpoint, "refused").inc()
    svc.gateway.writer.submit_nowait(Settle(ctx.principal.organization_id, row))

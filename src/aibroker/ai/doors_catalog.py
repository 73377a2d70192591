"""Seed 001's management routes: GET /api/ai/models and GET /api/ai/providers, per organization."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import select
from starlette.requests import Request

from aibroker.catalog.registry import ModelEntry
from aibroker.gateway.http import authenticate, services
from aibroker.models import ProviderCredential
from aibroker.models.guardrails import ProviderActivity
from aibroker.routing.router import find_runtime
from aibroker.tenancy.auth import Principal

router = APIRouter(prefix="/api/ai", tags=["AI (seed 001)"])
KINDS = ("chat", "embedding", "image", "audio", "speech", "moderation")


def _models_for(request: Request, principal: Principal) -> list[ModelEntry]:
    """The catalog's enabled models this organization's plan allows (as GET /v1/models)."""
    svc = services(request)
    entries = svc.catalog.available()
    if svc.limits is not None and svc.limits.enabled:
        plan = svc.plans.get(principal.plan)
        entries = [e for e in entries if plan.allows(e.id, e.name)]
    return sorted(entries, key=lambda e: e.id)


def _model(entry: ModelEntry) -> dict[str, Any]:
    return {"id": entry.id, "provider": entry.provider, "name": entry.name, "kind": entry.kind,
            "context_length": entry.context_length, "max_output_tokens": entry.max_output_tokens,
            "capabilities": sorted(entry.capabilities), "pricing": entry.pricing()}


@router.get("/models")
async def list_models(
    request: Request,
    kind: str | None = Query(default=None, description=f"Only this kind: {', '.join(KINDS)}."),
    provider: str | None = Query(default=None, max_length=60, description="Only this provider's models."),
) -> dict[str, Any]:
    """The models the organization may use, with kind, context window, capabilities and pricing (USD per token)."""
    principal = await authenticate(request)
    entries = [e for e in _models_for(request, principal) if (kind is None or e.kind == kind) and (provider is None or e.provider == provider)]
    return {"object": "list", "data": [_model(e) for e in entries]}


@router.get("/providers")
async def list_providers(request: Request) -> dict[str, Any]:
    """The providers enabled for the organization: whose key serves it (the platform's, or the
    organization's own `byok`), its models the plan allows, the routing matrix's status for it
    (active / testing / disabled; null when the matrix does not name it), and its health in this
    process: the circuit breaker's state (closed / open / half_open) and consecutive failures;
    `last_used_at`: when the organization's own key last served it, and for the platform
    admin when the platform's key did (written every few seconds, not per request)."""
    principal = await authenticate(request)
    svc = services(request)
    own = await svc.byok.keys_for(principal.organization_id) if svc.byok is not None else {}
    last_used = await _last_used(svc, principal)
    models: dict[str, list[str]] = {}
    for entry in _models_for(request, principal):
        models.setdefault(entry.provider, []).append(entry.id)
    runtime = find_runtime(svc)
    matrix = runtime.current().providers if runtime is not None else {}
    data = []
    for name, enabled in sorted(svc.pool.enabled.items()):
        breaker = svc.pool.breakers.get(name)
        state = breaker.state if breaker is not None else "closed"
        routing = matrix.get(name)
        deployments = getattr(svc.pool.adapters.get(name), "health", None)
        data.append({
            "name": name, "display_name": enabled.spec.display_name or name, "local": enabled.spec.local,
            "key": "byok" if name in own else "platform",
            "models": models.get(name, []),
            "routing_status": routing.status if routing is not None else None,
            "last_used_at": last_used["byok" if name in own else "platform"].get(name),
            "health": {"healthy": state == "closed", "breaker": state,
                       "consecutive_failures": breaker.consecutive_failures if breaker is not None else 0},
        })
        if callable(deployments):  # several deployments of the provider (AIBROKER_DEPLOYMENTS): each one's health
            data[-1]["deployments"] = deployments()
    return {"object": "list", "data": data}


async def _last_used(svc: Any, principal: Principal) -> dict[str, dict[str, Any]]:
    """provider -> last use, of the organization's own keys and (platform admin only, since it
    reflects every tenant's traffic) of the platform's."""
    async with svc.db.sessions() as session:
        own = await session.execute(
            select(ProviderCredential.provider, ProviderCredential.last_used_at).where(
                ProviderCredential.organization_id == principal.organization_id
            )
        )
        platform = await session.execute(select(ProviderActivity.provider, ProviderActivity.last_used_at)) if principal.is_platform_admin else []
        return {"byok": {p: t for p, t in own}, "platform": {p: t for p, t in platform}}

"""Platform page: provider health. The circuit breakers are this process's (as GET
/api/ai/providers reports them); error rate and latency come from the analytics rollups
over a recent window, so they cover every process."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from aibroker.ai.analytics_repository import AnalyticsRepository, Scope
from aibroker.gateway.http import services
from aibroker.kit.clock import utcnow
from aibroker.routing.router import find_runtime
from aibroker.web.pages import admin_common as common

router = APIRouter(prefix="/console/admin/providers", include_in_schema=False, dependencies=[Depends(common.super_admin)])
NAV = common.nav("Provider health", "/console/admin/providers")
WINDOWS = {1: "last hour", 24: "last 24 hours", 168: "last 7 days"}


def _breakers(svc: Any) -> dict[str, dict[str, Any]]:
    runtime = find_runtime(svc)
    matrix = runtime.current().providers if runtime is not None else {}
    out = {}
    for name, enabled in sorted(svc.pool.enabled.items()):
        breaker = svc.pool.breakers.get(name)
        health = getattr(svc.pool.adapters.get(name), "health", None)
        out[name] = {
            "name": name, "display_name": enabled.spec.display_name or name,
            "breaker": breaker.state if breaker is not None else "closed",
            "consecutive_failures": breaker.consecutive_failures if breaker is not None else 0,
            "routing_status": matrix[name].status if name in matrix else None,
            "deployments": health() if callable(health) else [],
        }
    return out


async def provider_health(request: Request, session: AsyncSession, hours: int) -> list[dict[str, Any]]:
    """One row per provider: enabled ones with their breaker, plus any that served traffic in the window."""
    now = utcnow()
    grouped = await AnalyticsRepository(session).grouped(Scope(None, now - dt.timedelta(hours=hours), now), ["provider"])
    traffic = {key[0]: m.render() for key, m in grouped if key[0]}
    rows = []
    breakers = _breakers(services(request))
    for name in sorted(set(breakers) | set(traffic)):
        base = breakers.get(name) or {"name": name, "display_name": name, "breaker": None, "consecutive_failures": 0,
                                      "routing_status": None, "deployments": []}
        m = traffic.get(name, {})
        rows.append({**base, "requests": m.get("requests", 0), "errors": m.get("errors", 0),
                     "failed_attempts": m.get("failed_attempts", 0), "error_rate": m.get("error_rate", 0.0),
                     "p50": m.get("latency_ms_p50"), "p95": m.get("latency_ms_p95"), "avg": m.get("latency_ms_avg")})
    return rows


@router.get("")
async def providers(request: Request, window: str = "24", session: AsyncSession = common.SESSION) -> Response:
    """Breaker state, error rate and latency (p50 / p95) of every provider."""
    hours = int(window) if window in {str(h) for h in WINDOWS} else 24  # anything else: the default window
    rows = await provider_health(request, session, hours)
    return common.page(request, "admin/providers.html", title="Provider health", rows=rows, hours=hours, windows=WINDOWS)

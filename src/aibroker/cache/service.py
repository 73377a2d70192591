"""The gateway's Cache hook: tenant-scoped lookups, TTL per kind, opt-outs, hit billing.

What is cached (default policy, `AIBROKER_CACHE_CHAT_MODE=deterministic`): embeddings
always; chat only when the answer is meant to be repeatable (temperature == 0) or the
request asks for it (`"cache": true`). Sampling at temperature > 0 is a request for a
fresh answer, so serving a stored one would change what the caller asked for.
Opt-outs: `Cache-Control: no-store` / body `"cache": false` per request,
`organizations.cache_enabled = false` per organization.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aibroker.billing.pricing import Cost, cost_of
from aibroker.cache.backends import (
    CacheBackend,
    MemoryBackend,
    RedisBackend,
    pack,
    unpack,
)
from aibroker.cache.keys import cache_key
from aibroker.catalog.registry import CHAT, EMBEDDING, ModelEntry
from aibroker.config import CacheSettings
from aibroker.gateway.context import CallContext
from aibroker.limits.counters import clock_seconds
from aibroker.limits.tenants import TenantDirectory
from aibroker.ops import metrics
from aibroker.providers.base import Usage

HIT_POLICIES = ("free", "provider_cost", "full")


def ttls(settings: CacheSettings) -> dict[str, int]:
    return {
        CHAT: settings.ttl_chat_seconds,
        EMBEDDING: settings.ttl_embedding_seconds,
        "completion": settings.ttl_completion_seconds,
        "image": settings.ttl_image_seconds,
    }


class ResponseCache:
    def __init__(
        self,
        settings: CacheSettings,
        tenants: TenantDirectory,
        *,
        redis_url: str | None = None,
        clock: Callable[[], float] = clock_seconds,
    ) -> None:
        if settings.hit_billing not in HIT_POLICIES:
            raise ValueError(f"AIBROKER_CACHE_HIT_BILLING must be one of {', '.join(HIT_POLICIES)}")
        self.settings = settings
        self.tenants = tenants
        self.clock = clock
        self.ttls = ttls(settings)
        self.backend: CacheBackend = (
            RedisBackend(redis_url) if redis_url else MemoryBackend(self.ttls, settings.max_entries, clock)
        )

    async def aclose(self) -> None:
        await self.backend.aclose()

    def _requested(self, ctx: CallContext, body: dict[str, Any], kind: str) -> bool:
        if not self.settings.enabled or ctx.no_store or body.get("cache") is False or kind not in self.ttls:
            return False
        if kind == CHAT and self.settings.chat_mode != "always":
            temperature = body.get("temperature")
            return body.get("cache") is True or (isinstance(temperature, (int, float)) and temperature == 0)
        return True

    async def get(self, ctx: CallContext, model: ModelEntry, body: dict[str, Any], kind: str) -> dict[str, Any] | None:
        ctx.cache_status = "bypass"
        if not self._requested(ctx, body, kind):
            return None
        principal = ctx.principal
        if not (await self.tenants.get(principal.organization_id, principal.api_key_id)).cache_enabled:
            return None
        ctx.cache_status = "miss"
        raw = await self.backend.get(kind, cache_key(principal.organization_id, model.provider, model.id, kind, body))
        found = unpack(raw, self.clock()) if raw is not None else None
        if found is None:
            metrics.child(metrics.CACHE_MISSES, kind).inc()
            return None
        ctx.cache_status = "hit"
        metrics.child(metrics.CACHE_HITS, kind).inc()
        return found

    async def put(self, ctx: CallContext, model: ModelEntry, body: dict[str, Any], kind: str, response: dict[str, Any]) -> None:
        # Only after a miss (eligible, enabled, looked up). Keyed by the model that answered:
        # a fallback's answer is never served for a request to the primary.
        if ctx.cache_status != "miss" or not response.get("choices", response.get("data")):
            return
        ttl = self.ttls[kind]
        key = cache_key(ctx.principal.organization_id, model.provider, model.id, kind, body)
        await self.backend.set(kind, key, pack(response, self.clock() + ttl), ttl)

    def hit_cost(self, ctx: CallContext, model: ModelEntry, usage: Usage, margin_bps: int) -> tuple[Cost, int]:
        """What a hit is billed, and what it saved: the fresh call's price minus that."""
        full = cost_of(model, usage, margin_bps)
        policy = self.settings.hit_billing
        if policy == "full":
            cost = Cost(0, full.billed_micros, margin_bps)  # nothing was paid upstream
        elif policy == "provider_cost":
            cost = Cost(0, full.provider_micros, 0)
        else:
            cost = Cost(0, 0, margin_bps)
        saved = max(0, full.billed_micros - cost.billed_micros)
        metrics.CACHE_SAVED_MICROS.inc(saved)
        return cost, saved

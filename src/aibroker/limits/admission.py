"""The gateway's Admission: plan access, input rules, rate limits and quotas.

    screen  (before planning)  input rules: size, message count, blocklist, PII redaction
    admit   (before the call)  model allowed by the plan; request counters +1 on every
                               applicable window (all refunded if any refuses); token
                               counters must be under their limit
    settle  (after the call)   actual tokens added to the token counters; quota
                               thresholds crossed (80%, 100%) become events
    refund  (a later refusal)  a request refused after admission (402, ...) gives back
                               every request counter admit added: refusals use no limit
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aibroker.catalog.registry import ModelEntry
from aibroker.config import LimitsSettings
from aibroker.errors import BrokerError, PermissionDenied
from aibroker.gateway.context import CallContext
from aibroker.gateway.hooks import Ticket
from aibroker.limits.counters import WindowCounters
from aibroker.limits.events import QuotaEvents, crossed
from aibroker.limits.input_rules import InputRules
from aibroker.limits.plans import Plan, PlanBook
from aibroker.limits.rules import (
    REQUESTS,
    Counted,
    Rule,
    provider_token_rule,
    request_rules,
    token_rules,
)
from aibroker.limits.tenants import TenantDirectory
from aibroker.providers.base import Usage


class RateLimited(BrokerError):
    status_code = 429
    error_type = "rate_limit_exceeded"


class QuotaExceeded(RateLimited):
    error_type = "quota_exceeded"


@dataclass(slots=True)
class Admitted:
    hits: list[Counted]
    tokens: list[Rule] = field(default_factory=list)
    refunded: bool = False


def duration(seconds: float) -> str:
    """OpenAI's reset format: 1s, 6m0s, 1h2m3s."""
    seconds = max(0, math.ceil(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _tightest(counted: Sequence[Counted]) -> Counted | None:
    rates = [c for c in counted if not c.rule.quota]
    return min(rates, key=lambda c: (c.remaining, -c.window.end)) if rates else None


def ratelimit_headers(requests: Sequence[Counted], tokens: Sequence[Counted], now: float) -> dict[str, str]:
    headers: dict[str, str] = {}
    for suffix, counted in (("requests", requests), ("tokens", tokens)):
        tight = _tightest(counted)
        if tight is not None:
            headers[f"x-ratelimit-limit-{suffix}"] = str(tight.rule.limit)
            headers[f"x-ratelimit-remaining-{suffix}"] = str(tight.remaining)
            headers[f"x-ratelimit-reset-{suffix}"] = duration(tight.window.reset_after(now))
    return headers


class PlanAdmission:
    def __init__(
        self,
        *,
        settings: LimitsSettings,
        plans: PlanBook,
        tenants: TenantDirectory,
        counters: WindowCounters,
        events: QuotaEvents,
    ) -> None:
        self.settings = settings
        self.enabled = settings.limits_enabled
        self.plans = plans
        self.tenants = tenants
        self.counters = counters
        self.events = events
        self.input_rules = InputRules(settings.blocklist, settings.pii_redaction, settings.pii_phone_region)

    # -- hooks --------------------------------------------------------------------------

    def screen(self, ctx: CallContext, body: dict[str, Any], kind: str) -> None:
        """Input rules, before the gateway plans the upstream calls (so they see the redacted body)."""
        if self.enabled:
            self.input_rules.apply(self.plans.get(ctx.principal.plan), body, kind)

    async def admit(self, ctx: CallContext, model: ModelEntry, body: dict[str, Any]) -> Ticket:
        if not self.enabled:
            return Ticket()
        principal = ctx.principal
        plan = self.plans.get(principal.plan)
        if not plan.allows(model.id, model.name):
            raise PermissionDenied(
                f"The {plan.name} plan does not include the model '{model.id}'.", param="model", code="model_not_allowed"
            )
        org, key = principal.organization_id, principal.api_key_id
        tenant = await self.tenants.get(org, key)
        provider = model.provider
        requests = request_rules(plan, tenant, org, key, ctx.user_id, provider, self.settings.provider_rpm.get(provider))
        tokens = token_rules(plan, tenant, org, key, ctx.user_id)
        provider_tokens = provider_token_rule(provider, self.settings.provider_tpm.get(provider))
        if not requests and not tokens and provider_tokens is None:
            return Ticket()
        now = self.counters.clock()
        hits, token_state = await self._add_and_get(requests, [*tokens, *([provider_tokens] if provider_tokens else [])], now)
        refused = [c for c in hits if c.count > c.rule.limit]
        if refused:
            await self._add_counted(hits, -1, now)
            raise self._refusal(plan, refused, now)
        spent = [c for c in token_state if c.count >= c.rule.limit]
        if spent:
            await self._add_counted(hits, -1, now)
            raise self._refusal(plan, spent, now)
        for hit in hits:
            if hit.rule.quota:
                await self._announce(ctx, plan, hit, hit.count - 1)
        return Ticket(ratelimit_headers(hits, token_state, now), Admitted(hits, tokens))

    async def refund(self, ctx: CallContext, ticket: Ticket) -> None:
        """The request was refused after admission (402, ...): give back what admit counted, once."""
        state = ticket.state
        if not isinstance(state, Admitted) or state.refunded:
            return
        state.refunded = True
        await self._add_counted(state.hits, -1, self.counters.clock())

    async def settle(self, ctx: CallContext, ticket: Ticket, model: ModelEntry, usage: Usage | None) -> None:
        state = ticket.state
        if not isinstance(state, Admitted) or state.refunded:
            return
        now = self.counters.clock()
        if ctx.cache_status == "hit":
            # Served from the cache: no upstream call, so the provider's slot is given back
            # and no tokens count (a hit is billed by the cache policy, free by default).
            await self._add_counted([h for h in state.hits if h.rule.scope == "provider"], -1, now)
            return
        if usage is None:
            return
        used = usage.input_tokens + usage.output_tokens
        if used <= 0:
            return
        rules = list(state.tokens)
        provider_rule = provider_token_rule(model.provider, self.settings.provider_tpm.get(model.provider))
        if provider_rule is not None:
            rules.append(provider_rule)
        plan = self.plans.get(ctx.principal.plan)
        for counted in await self._add_all(rules, used, now):
            if counted.rule.quota:
                await self._announce(ctx, plan, counted, counted.count - used)

    # -- counters -----------------------------------------------------------------------

    async def _add_all(self, rules: Sequence[Rule], amount: int, now: float) -> list[Counted]:
        windows = [r.window(now) for r in rules]
        counts = await self.counters.add_many([(r.counter, w) for r, w in zip(rules, windows, strict=True)], amount, now)
        return [Counted(r, w, c) for r, w, c in zip(rules, windows, counts, strict=True)]

    async def _add_and_get(self, adds: Sequence[Rule], gets: Sequence[Rule], now: float) -> tuple[list[Counted], list[Counted]]:
        """Request counters +1 and the token counters' state, in one round trip on Redis."""
        add_windows, get_windows = [r.window(now) for r in adds], [r.window(now) for r in gets]
        added, got = await self.counters.add_many_then_get(
            [(r.counter, w) for r, w in zip(adds, add_windows, strict=True)], 1,
            [(r.counter, w) for r, w in zip(gets, get_windows, strict=True)], now,
        )
        return ([Counted(r, w, c) for r, w, c in zip(adds, add_windows, added, strict=True)],
                [Counted(r, w, c) for r, w, c in zip(gets, get_windows, got, strict=True)])

    async def _add_counted(self, counted: Sequence[Counted], amount: int, now: float) -> None:
        await self.counters.add_many([(c.rule.counter, c.window) for c in counted], amount, now)

    async def _get_all(self, rules: Sequence[Rule], now: float) -> list[Counted]:
        windows = [r.window(now) for r in rules]
        counts = await self.counters.get_many([(r.counter, w) for r, w in zip(rules, windows, strict=True)])
        return [Counted(r, w, c) for r, w, c in zip(rules, windows, counts, strict=True)]

    # -- refusals and events --------------------------------------------------------------

    def _refusal(self, plan: Plan, refused: list[Counted], now: float) -> RateLimited:
        worst = max(refused, key=lambda c: c.window.end)
        retry_after = max(1, math.ceil(worst.window.reset_after(now)))
        rule = worst.rule
        headers = {"retry-after": str(retry_after), "x-aibroker-cache": "bypass"}
        suffix = "requests" if rule.metric == REQUESTS else "tokens"
        headers[f"x-ratelimit-limit-{suffix}"] = str(rule.limit)
        headers[f"x-ratelimit-remaining-{suffix}"] = "0"
        headers[f"x-ratelimit-reset-{suffix}"] = duration(worst.window.reset_after(now))
        extra = {"limit": rule.limit, "scope": rule.scope, "metric": rule.metric, "period": rule.period,
                 "retry_after_seconds": retry_after}
        if rule.quota:
            resets = dt.datetime.fromtimestamp(worst.window.end, dt.UTC).isoformat()
            source = "set on the key" if rule.scope == "key" else f"{plan.name} plan"
            return QuotaExceeded(
                f"Quota reached: {rule.describe()} ({source}). It resets at {resets}.",
                code=f"{rule.period}_{rule.metric}_quota", headers=headers, extra={**extra, "resets_at": resets},
            )
        return RateLimited(
            f"Rate limit reached: {rule.describe()}. Try again in {retry_after}s.",
            code=f"{suffix}_per_{rule.period}", headers=headers, extra=extra,
        )

    async def _announce(self, ctx: CallContext, plan: Plan, counted: Counted, before: int) -> None:
        rule = counted.rule
        for threshold in crossed(before, counted.count, rule.limit):
            await self.events.emit(
                ctx.principal.organization_id,
                threshold,
                {"scope": rule.scope, "scope_id": rule.scope_id, "metric": rule.metric, "period": rule.period,
                 "window": counted.window.id, "limit": rule.limit, "used": counted.count, "plan": plan.slug},
            )

    # -- reporting (GET /api/ai/quota) -----------------------------------------------------

    async def report(self, ctx: CallContext) -> dict[str, Any]:
        principal = ctx.principal
        plan = self.plans.get(principal.plan)
        org, key = principal.organization_id, principal.api_key_id
        tenant = await self.tenants.get(org, key)
        rules = request_rules(plan, tenant, org, key, ctx.user_id, "-", None) + token_rules(plan, tenant, org, key, ctx.user_id)
        now = self.counters.clock()
        state = await self._get_all(rules, now)
        quotas, rates = [], []
        for counted in state:
            rule = counted.rule
            item = {"scope": rule.scope, "metric": rule.metric, "period": rule.period, "limit": rule.limit,
                    "used": counted.count, "remaining": counted.remaining,
                    "resets_at": dt.datetime.fromtimestamp(counted.window.end, dt.UTC).isoformat()}
            if rule.quota:
                item["percent_used"] = round(100 * counted.count / rule.limit, 2) if rule.limit else 100.0
            (quotas if rule.quota else rates).append(item)
        return {
            "organization_id": org,
            "api_key_id": key,
            "plan": {"slug": plan.slug, "name": plan.name},
            "quotas": quotas,
            "rate_limits": rates,
            "limits_enabled": self.enabled,
        }



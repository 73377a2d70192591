"""Which counters apply to a request: per key, per user, per organization, per provider."""

from __future__ import annotations

from dataclasses import dataclass

from aibroker.limits.counters import Window, window_of
from aibroker.limits.plans import Plan
from aibroker.limits.tenants import TenantInfo

REQUESTS, TOKENS = "requests", "tokens"


@dataclass(frozen=True, slots=True)
class Rule:
    counter: str  # storage key base, e.g. "o:org_1:requests"
    period: str  # minute | hour | day | month
    limit: int
    metric: str  # requests | tokens
    scope: str  # key | user | organization | provider
    scope_id: str
    quota: bool = False  # calendar quota (quota_exceeded, warning events) vs rate limit
    phase: float = 0.0

    def window(self, now: float) -> Window:
        return window_of(self.period, now, self.phase)

    def describe(self) -> str:
        what = {"key": "this API key", "user": f"user '{self.scope_id}'", "organization": "this organization",
                "provider": f"provider '{self.scope_id}'"}[self.scope]
        return f"{self.limit} {self.metric} per {self.period} for {what}"


@dataclass(slots=True)
class Counted:
    rule: Rule
    window: Window
    count: int

    @property
    def remaining(self) -> int:
        return max(0, self.rule.limit - self.count)


def _add(rules: list[Rule], limit: int | None, **kw: object) -> None:
    if limit is not None:
        rules.append(Rule(limit=limit, **kw))  # type: ignore[arg-type]


def request_rules(
    plan: Plan, tenant: TenantInfo, org: str, key: str | None, user: str | None, provider: str, provider_rpm: int | None
) -> list[Rule]:
    rules: list[Rule] = []
    if key is not None:
        for period, limit, quota in (
            ("minute", tenant.key_rpm, False),
            ("hour", tenant.key_rph, False),
            ("day", tenant.key_daily_request_quota, True),
            ("month", tenant.key_monthly_request_quota, True),
        ):
            _add(rules, limit, counter=f"k:{key}:{REQUESTS}", period=period, metric=REQUESTS, scope="key",
                 scope_id=key, quota=quota, phase=tenant.key_created)
    if user is not None:
        for period, limit in (("minute", plan.user_requests_per_minute), ("hour", plan.user_requests_per_hour)):
            _add(rules, limit, counter=f"u:{org}:{user}:{REQUESTS}", period=period, metric=REQUESTS, scope="user",
                 scope_id=user, phase=tenant.org_created)
    for period, limit, quota in (
        ("minute", plan.requests_per_minute, False),
        ("hour", plan.requests_per_hour, False),
        ("day", plan.daily_request_quota, True),
        ("month", plan.monthly_request_quota, True),
    ):
        _add(rules, limit, counter=f"o:{org}:{REQUESTS}", period=period, metric=REQUESTS, scope="organization",
             scope_id=org, quota=quota, phase=tenant.org_created)
    _add(rules, provider_rpm, counter=f"p:{provider}:{REQUESTS}", period="minute", metric=REQUESTS, scope="provider",
         scope_id=provider)
    return rules


def token_rules(plan: Plan, tenant: TenantInfo, org: str, key: str | None, user: str | None) -> list[Rule]:
    """Token counters of the tenant (the provider's is added per call: it depends on who served)."""
    rules: list[Rule] = []
    if key is not None:
        for period, limit, quota in (
            ("minute", tenant.key_tpm, False),
            ("day", tenant.key_daily_token_quota, True),
            ("month", tenant.key_monthly_token_quota, True),
        ):
            _add(rules, limit, counter=f"k:{key}:{TOKENS}", period=period, metric=TOKENS, scope="key",
                 scope_id=key, quota=quota, phase=tenant.key_created)
    if user is not None:
        _add(rules, plan.user_tokens_per_minute, counter=f"u:{org}:{user}:{TOKENS}", period="minute", metric=TOKENS,
             scope="user", scope_id=user, phase=tenant.org_created)
    for period, limit, quota in (
        ("minute", plan.tokens_per_minute, False),
        ("day", plan.daily_token_quota, True),
        ("month", plan.monthly_token_quota, True),
    ):
        _add(rules, limit, counter=f"o:{org}:{TOKENS}", period=period, metric=TOKENS, scope="organization",
             scope_id=org, quota=quota, phase=tenant.org_created)
    return rules


def provider_token_rule(provider: str, provider_tpm: int | None) -> Rule | None:
    if provider_tpm is None:
        return None
    return Rule(counter=f"p:{provider}:{TOKENS}", period="minute", limit=provider_tpm, metric=TOKENS,
                scope="provider", scope_id=provider)

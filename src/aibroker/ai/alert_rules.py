"""The checks behind alerts, each a read over current data returning what crossed a line:
spend per local day and month (organizations), error rates and open circuit breakers
(providers, platform), API keys and provider keys about to expire."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai.rollup_shape import zone
from aibroker.models import AlertSetting, ApiKey, Organization, ProviderCredential, UsageRollup, UsageRollupPlatform

R = UsageRollup.__table__.c
CHUNK = 500
SPEND_DAILY, SPEND_MONTHLY = "alert.spend_daily", "alert.spend_monthly"
ERROR_RATE, CIRCUIT_OPEN = "alert.provider_error_rate", "alert.circuit_open"
API_KEY_EXPIRING, PROVIDER_KEY_EXPIRING = "alert.api_key_expiring", "alert.provider_key_expiring"


@dataclass(slots=True)
class Found:
    kind: str
    organization_id: str | None
    dedup: str  # what makes it the same alert: the threshold and its period
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Policy:
    enabled: bool = True
    daily: int | None = None
    monthly: int | None = None
    expiry_days: int = 7


async def policies(session: AsyncSession, org_ids: list[str] | None, default_monthly: int | None, default_days: int) -> dict[str, Policy]:
    """Each organization's alert policy: its own settings row over the platform defaults."""
    query = select(AlertSetting)
    if org_ids is not None:
        query = query.where(AlertSetting.organization_id.in_(org_ids))
    rows = {r.organization_id: r for r in (await session.scalars(query)).all()}
    out: dict[str, Policy] = defaultdict(lambda: Policy(monthly=default_monthly, expiry_days=default_days))
    for org_id, r in rows.items():
        out[org_id] = Policy(
            enabled=r.enabled, daily=r.daily_spend_micros,
            monthly=r.monthly_spend_micros if r.monthly_spend_micros is not None else default_monthly,
            expiry_days=r.key_expiry_days if r.key_expiry_days is not None else default_days,
        )
    return out


async def spend(session: AsyncSession, now: dt.datetime, default_monthly: int | None, default_days: int) -> list[Found]:
    """Organizations whose billed spend today / this month (their zone) reached a threshold.
    Only organizations with spend in the last two hours are read: only they can have crossed."""
    recent = select(R.organization_id).where(R.bucket_start >= now - dt.timedelta(hours=2), R.billed_cost_micros > 0).distinct()
    candidates = sorted((await session.scalars(recent)).all())
    found: list[Found] = []
    for start in range(0, len(candidates), CHUNK):
        chunk = candidates[start:start + CHUNK]
        rules = await policies(session, chunk, default_monthly, default_days)
        zones = dict((await session.execute(select(Organization.id, Organization.timezone).where(Organization.id.in_(chunk)))).all())
        days = (await session.execute(
            select(R.organization_id, R.local_date, func.sum(R.billed_cost_micros))
            .where(R.organization_id.in_(chunk), R.bucket_start >= now - dt.timedelta(days=32))
            .group_by(R.organization_id, R.local_date)
        )).all()
        by_org: dict[str, dict[str, int]] = defaultdict(dict)
        for org_id, day, billed in days:
            by_org[org_id][day] = int(billed or 0)
        for org_id in chunk:
            rule = rules[org_id]
            if not rule.enabled:
                continue
            today = now.astimezone(zone(zones.get(org_id))).date().isoformat()
            month = today[:7]
            spent_day = by_org[org_id].get(today, 0)
            spent_month = sum(v for d, v in by_org[org_id].items() if d.startswith(month))
            if rule.daily and spent_day >= rule.daily:
                found.append(Found(SPEND_DAILY, org_id, f"{today}|{rule.daily}",
                                   {"period": today, "threshold_micros": rule.daily, "spent_micros": spent_day}))
            if rule.monthly and spent_month >= rule.monthly:
                found.append(Found(SPEND_MONTHLY, org_id, f"{month}|{rule.monthly}",
                                   {"period": month, "threshold_micros": rule.monthly, "spent_micros": spent_month}))
    return found


async def error_rates(session: AsyncSession, now: dt.datetime, threshold: float, min_attempts: int) -> list[Found]:
    """Providers whose upstream failure rate over the last one to two hours reached `threshold`."""
    p = UsageRollupPlatform.__table__.c  # all organizations' hours: a few rows per provider
    rows = (await session.execute(
        select(p.provider, func.sum(p.requests), func.sum(p.refused), func.sum(p.errors), func.sum(p.failed_attempts))
        .where(p.bucket_start > now - dt.timedelta(hours=2)).group_by(p.provider)
    )).all()
    hour = now.strftime("%Y-%m-%dT%H")
    found = []
    for provider, requests, refused, errors, failed in rows:
        attempts = int(requests or 0) - int(refused or 0) + int(failed or 0)
        failures = int(errors or 0) + int(failed or 0)
        if provider and attempts >= min_attempts and failures / attempts >= threshold:
            found.append(Found(ERROR_RATE, None, f"{provider}|{hour}", {
                "provider": provider, "hour": hour, "attempts": attempts, "failures": failures,
                "error_rate": round(failures / attempts, 4), "threshold": threshold,
            }))
    return found


def open_breakers(breakers: dict[str, Any], now: dt.datetime, process: str) -> list[Found]:
    """This process's circuit breakers that are open (or trying one call): one alert per provider per hour."""
    hour = now.strftime("%Y-%m-%dT%H")
    return [Found(CIRCUIT_OPEN, None, f"{name}|{hour}", {"provider": name, "state": b.state, "hour": hour, "process": process})
            for name, b in sorted(breakers.items()) if b.state != "closed"]


async def expiring_keys(session: AsyncSession, now: dt.datetime, default_monthly: int | None, default_days: int) -> list[Found]:
    """Live API keys and organizations' own provider keys expiring
    within each organization's `key_expiry_days`. One alert per key and expiry date."""
    rules = await policies(session, None, default_monthly, default_days)
    widest = max([default_days, *(p.expiry_days for p in rules.values())])
    found: list[Found] = []
    keys = (await session.execute(
        select(ApiKey.id, ApiKey.organization_id, ApiKey.name, ApiKey.display_prefix, ApiKey.expires_at)
        .where(ApiKey.revoked_at.is_(None), ApiKey.expires_at > now, ApiKey.expires_at <= now + dt.timedelta(days=widest))
    )).all()
    for key_id, org_id, name, prefix, expires in keys:
        found.extend(_expiring(API_KEY_EXPIRING, rules[org_id], org_id, key_id, expires, now,
                               {"api_key_id": key_id, "name": name, "display_prefix": prefix}))
    creds = (await session.execute(
        select(ProviderCredential.id, ProviderCredential.organization_id, ProviderCredential.provider, ProviderCredential.expires_at)
        .where(ProviderCredential.expires_at > now, ProviderCredential.expires_at <= now + dt.timedelta(days=widest))
    )).all()
    for cred_id, org_id, provider, expires in creds:
        found.extend(_expiring(PROVIDER_KEY_EXPIRING, rules[org_id], org_id, cred_id, expires, now,
                               {"provider_key_id": cred_id, "provider": provider}))
    return found


def _expiring(kind: str, rule: Policy, org_id: str, key_id: str, expires: dt.datetime, now: dt.datetime,
              payload: dict[str, Any]) -> list[Found]:
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    if not rule.enabled or not rule.expiry_days or expires > now + dt.timedelta(days=rule.expiry_days):
        return []
    days_left = max(0, (expires - now).days)
    return [Found(kind, org_id, f"{key_id}|{expires.isoformat()}",
                  {**payload, "expires_at": expires.isoformat(), "days_left": days_left})]

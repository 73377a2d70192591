"""What admission and the cache need to know about an organization and an API key,
looked up once and kept for a few seconds (never a query per request)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.kit.singleflight import SingleFlight
from aibroker.models import ApiKey, Organization


@dataclass(frozen=True, slots=True)
class TenantInfo:
    org_created: float  # epoch seconds: the phase of the organization's rolling windows
    cache_enabled: bool = True
    key_created: float = 0.0
    key_rpm: int | None = None
    key_rph: int | None = None
    key_tpm: int | None = None
    key_monthly_token_quota: int | None = None
    key_daily_token_quota: int | None = None
    key_monthly_request_quota: int | None = None
    key_daily_request_quota: int | None = None


_KEY_COLUMNS = (
    ApiKey.created_at, ApiKey.rpm, ApiKey.rph, ApiKey.tpm,
    ApiKey.monthly_token_quota, ApiKey.daily_token_quota, ApiKey.monthly_request_quota, ApiKey.daily_request_quota,
)


def _epoch(value: dt.datetime | None) -> float:
    if value is None:
        return 0.0
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


class TenantDirectory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_seconds: float) -> None:
        self._sessions = sessions
        self._cache: TTLCache[tuple[str, str | None], TenantInfo] = TTLCache(maxsize=100_000, ttl=max(ttl_seconds, 0.001))
        self._loads: SingleFlight[tuple[str, str | None], TenantInfo] = SingleFlight()  # one query per miss

    async def get(self, organization_id: str, api_key_id: str | None) -> TenantInfo:
        ref = (organization_id, api_key_id)
        info = self._cache.get(ref)
        if info is None:
            info = await self._loads.run(ref, lambda: self._load(organization_id, api_key_id))
            self._cache[ref] = info
        return info

    def forget(self) -> None:
        self._cache.clear()
        self._loads.forget()

    async def _load(self, organization_id: str, api_key_id: str | None) -> TenantInfo:
        async with self._sessions() as session:
            org = (
                await session.execute(
                    select(Organization.created_at, Organization.cache_enabled).where(Organization.id == organization_id)
                )
            ).first()
            key = None
            if api_key_id is not None:
                key = (
                    await session.execute(
                        select(*_KEY_COLUMNS).where(ApiKey.id == api_key_id, ApiKey.organization_id == organization_id)
                    )
                ).first()
        info = TenantInfo(org_created=_epoch(org.created_at) if org else 0.0, cache_enabled=bool(org.cache_enabled) if org else True)
        if key is None:
            return info
        return TenantInfo(
            org_created=info.org_created,
            cache_enabled=info.cache_enabled,
            key_created=_epoch(key.created_at),
            key_rpm=key.rpm,
            key_rph=key.rph,
            key_tpm=key.tpm,
            key_monthly_token_quota=key.monthly_token_quota,
            key_daily_token_quota=key.daily_token_quota,
            key_monthly_request_quota=key.monthly_request_quota,
            key_daily_request_quota=key.daily_request_quota,
        )

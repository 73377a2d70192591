"""Bring your own key: an organization stores its own provider key; its requests to that
provider go upstream with that key and are billed only the platform fee (BYOK fee).

Keys are sealed with AES-256-GCM (bound to organization + provider) and never returned.
The gateway reads them through `ProviderKeyStore`, which caches each organization's
sealed keys for a few seconds: the hot path pays no database round trip. A change made
in this process drops the cache entry at once; other processes see it within
`byok_cache_seconds`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request

from aibroker.deps import db_session, require
from aibroker.errors import InvalidRequest, NotFound
from aibroker.gateway.http import services
from aibroker.kit import crypto
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.kit.singleflight import SingleFlight
from aibroker.models import ProviderCredential
from aibroker.providers.pool import ProviderPool
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import Permission

log = logging.getLogger(__name__)

router = APIRouter(tags=["Provider keys (BYOK)"])


def seal_context(organization_id: str, provider: str) -> str:
    """AAD of a sealed key: a ciphertext copied to another organization or provider won't open."""
    return f"byok:{organization_id}:{provider}"


def byok_providers(pool: ProviderPool) -> set[str]:
    """Providers of this broker that take an API key (the mock and keyless local servers do not).
    A provider must be enabled on the platform (its adapter and catalog entries exist)."""
    return {name for name, enabled in pool.enabled.items() if enabled.spec.key_env}


@dataclass(frozen=True, slots=True)
class KeyMeta:
    """What the gateway needs besides the key: which row (last used, usage), its expiry, its limit."""

    credential_id: str
    expires_at: float | None  # epoch seconds
    monthly_limit_micros: int | None


@dataclass(slots=True)
class _Sealed:
    expires_at: float  # monotonic
    keys: dict[str, tuple[bytes, str]]  # provider -> (sealed key, key id)
    meta: dict[str, KeyMeta]


class ProviderKeyStore:
    """The organizations' own provider keys, cached in-process for a few seconds."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, secret: str, cache_seconds: float) -> None:
        self._sessions = sessions
        self._secret = secret
        self._key_id = crypto.key_id(secret)
        self._cache_seconds = cache_seconds
        self._cache: dict[str, _Sealed] = {}
        self._loads: SingleFlight[str, _Sealed] = SingleFlight()  # a burst of misses makes one query

    async def keys_for(self, organization_id: str) -> dict[str, str]:
        """provider -> plaintext key, for this organization (usually empty)."""
        cached = self._cache.get(organization_id)
        if cached is None or cached.expires_at < time.monotonic():
            cached = await self._loads.run(organization_id, lambda: self._load(organization_id))
            self._cache[organization_id] = cached
        if not cached.keys:
            return {}
        now = time.time()
        return {
            p: key for p, (sealed, kid) in cached.keys.items()
            if not _expired(cached.meta[p], now) and (key := self._open(organization_id, p, sealed, kid))
        }

    def meta(self, organization_id: str) -> dict[str, KeyMeta]:
        """provider -> its key's row, expiry and limit (as last loaded by `keys_for`)."""
        cached = self._cache.get(organization_id)
        return cached.meta if cached is not None else {}

    def _open(self, organization_id: str, provider: str, sealed: bytes, kid: str) -> str | None:
        if kid != self._key_id:  # sealed under a previous secret: unusable until re-entered
            log.warning("BYOK key of %s for %s was sealed with another secret key", organization_id, provider)
            return None
        return crypto.unseal(sealed, self._secret, context=seal_context(organization_id, provider))

    async def _load(self, organization_id: str) -> _Sealed:
        async with self._sessions() as session:
            rows = (await session.execute(
                select(ProviderCredential.provider, ProviderCredential.sealed_key, ProviderCredential.key_id,
                       ProviderCredential.id, ProviderCredential.expires_at, ProviderCredential.monthly_limit_micros).where(
                    ProviderCredential.organization_id == organization_id
                )
            )).all()
            keys = {provider: (bytes(sealed), kid) for provider, sealed, kid, *_ in rows}
            meta = {
                provider: KeyMeta(cred_id, expires.timestamp() if expires is not None else None, limit)
                for provider, _, _, cred_id, expires, limit in rows
            }
        return _Sealed(time.monotonic() + self._cache_seconds, keys, meta)

    def forget(self, organization_id: str) -> None:
        self._cache.pop(organization_id, None)
        self._loads.forget(organization_id)


def _expired(meta: KeyMeta, now: float) -> bool:
    return meta.expires_at is not None and meta.expires_at <= now


# -- service (takes a session, never commits) -----------------------------------------


async def save_key(
    session: AsyncSession, *, organization_id: str, provider: str, api_key: str, secret: str,
    expires_at: dt.datetime | None = None, monthly_limit_micros: int | None = None,
) -> ProviderCredential:
    """Store (or replace) the organization's key for `provider`, sealed. A replaced key keeps
    its month's usage (the limit is the organization's budget for the provider)."""
    sealed = crypto.seal(api_key, secret, context=seal_context(organization_id, provider))
    existing = await session.scalar(
        select(ProviderCredential).where(
            ProviderCredential.organization_id == organization_id, ProviderCredential.provider == provider
        )
    )
    if existing is None:
        existing = ProviderCredential(id=new_id("pkey"), organization_id=organization_id, provider=provider)
        session.add(existing)
    existing.sealed_key = sealed
    existing.key_id = crypto.key_id(secret)
    existing.display_hint = api_key[-4:]
    existing.created_at = utcnow()
    existing.expires_at = expires_at
    existing.monthly_limit_micros = monthly_limit_micros
    await session.flush()
    return existing


async def delete_key(session: AsyncSession, *, organization_id: str, provider: str) -> None:
    result = await session.execute(
        delete(ProviderCredential).where(
            ProviderCredential.organization_id == organization_id, ProviderCredential.provider == provider
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"no stored key for provider '{provider}' in this organization", param="provider")


# -- endpoints ------------------------------------------------------------------------


INT64_MAX = 2**63 - 1


class ProviderKeyLifecycle(BaseModel):
    expires_at: dt.datetime | None = Field(default=None, description="From then on the key is not used (the platform's key and price apply). ISO datetime, UTC if no zone.")
    monthly_limit_micros: int | None = Field(
        default=None, ge=1, le=INT64_MAX,
        description="The most provider cost (micro-units, at catalog prices) this key may run up per calendar month (UTC). "
                    "A request that could pass it is served with the platform's key and price instead.")


class ProviderKeyCreate(ProviderKeyLifecycle):
    provider: str = Field(description="Provider name, e.g. 'openai' (see GET /v1/models `owned_by`).", max_length=60)
    api_key: str = Field(description="The provider API key. Stored sealed (AES-256-GCM); never shown again.", min_length=8, max_length=500)


class ProviderKeyUpdate(ProviderKeyLifecycle):
    """Only the fields sent change; null removes the expiry or the limit."""


class ProviderKeyInfo(BaseModel):
    provider: str = Field(description="The provider this key is used for.")
    hint: str = Field(description="The key's last 4 characters, to recognise it.")
    created_at: dt.datetime | None = Field(description="When the key was stored (or last replaced).")
    last_used_at: dt.datetime | None = Field(default=None, description="When it last served a request (written every few seconds, not per request).")
    expires_at: dt.datetime | None = Field(default=None, description="When it stops being used (null: never).")
    expired: bool = Field(default=False, description="Whether it is past its expiry (and so not used).")
    monthly_limit_micros: int | None = Field(default=None, description="Its monthly limit of provider cost (null: none).")
    usage_micros: int = Field(default=0, description="Provider cost it ran up this calendar month (UTC).")


def _info(row: ProviderCredential) -> ProviderKeyInfo:
    month = utcnow().strftime("%Y-%m")
    expires = row.expires_at
    return ProviderKeyInfo(
        provider=row.provider, hint=row.display_hint, created_at=row.created_at, last_used_at=row.last_used_at,
        expires_at=expires, expired=expires is not None and expires <= utcnow(), monthly_limit_micros=row.monthly_limit_micros,
        usage_micros=row.usage_micros if row.usage_month == month else 0,
    )


def _future(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if value <= utcnow():
        raise InvalidRequest("expires_at must be in the future", param="expires_at")
    return value


@router.post("/api/provider-keys", response_model=ProviderKeyInfo, status_code=201)
async def put_provider_key(
    body: ProviderKeyCreate, request: Request, who: Principal = Depends(require(Permission.MANAGE_KEYS)), session: AsyncSession = Depends(db_session, scope="function")
) -> ProviderKeyInfo:
    """Store the organization's own key for a provider (replacing any previous one).

    From then on, requests served by that provider use this key and are billed only the
    platform's BYOK fee (`AIBROKER_BYOK_FEE_MICROS` per request), not the provider cost."""
    svc = services(request)
    provider = body.provider.strip().lower()
    known = byok_providers(svc.pool)
    if provider not in known:
        choices = ", ".join(sorted(known)) or "none is enabled on this broker"
        raise InvalidRequest(f"provider '{body.provider}' does not take keys here; one of: {choices}", param="provider")
    api_key = body.api_key.strip()
    if not api_key or any(c.isspace() for c in api_key):
        raise InvalidRequest("api_key must be a single token without spaces", param="api_key")
    row = await save_key(
        session, organization_id=who.organization_id, provider=provider, api_key=api_key, secret=svc.settings.server.secret_key,
        expires_at=_future(body.expires_at), monthly_limit_micros=body.monthly_limit_micros,
    )
    info = _info(row)
    await session.commit()
    svc.byok.forget(who.organization_id)
    return info


@router.get("/api/provider-keys", response_model=list[ProviderKeyInfo])
async def list_provider_keys(who: Principal = Depends(require(Permission.MANAGE_KEYS)), session: AsyncSession = Depends(db_session, scope="function")) -> list[ProviderKeyInfo]:
    """The organization's stored provider keys (provider and last 4 characters; never the key),
    with when each was last used, its expiry, its monthly limit and this month's usage."""
    rows = await session.scalars(
        select(ProviderCredential).where(ProviderCredential.organization_id == who.organization_id).order_by(ProviderCredential.provider)
    )
    return [_info(row) for row in rows]


@router.patch("/api/provider-keys/{provider}", response_model=ProviderKeyInfo)
async def update_provider_key(
    provider: str, body: ProviderKeyUpdate, request: Request, who: Principal = Depends(require(Permission.MANAGE_KEYS)),
    session: AsyncSession = Depends(db_session, scope="function"),
) -> ProviderKeyInfo:
    """Change a stored key's expiry or monthly limit without entering the key again."""
    row = await session.scalar(select(ProviderCredential).where(
        ProviderCredential.organization_id == who.organization_id, ProviderCredential.provider == provider.strip().lower()))
    if row is None:
        raise NotFound(f"no stored key for provider '{provider}' in this organization", param="provider")
    changes = body.model_dump(exclude_unset=True)
    if "expires_at" in changes:
        row.expires_at = _future(changes["expires_at"])
    if "monthly_limit_micros" in changes:
        row.monthly_limit_micros = changes["monthly_limit_micros"]
    await session.flush()
    info = _info(row)
    await session.commit()
    services(request).byok.forget(who.organization_id)
    return info


@router.delete("/api/provider-keys/{provider}", status_code=204)
async def delete_provider_key(
    provider: str, request: Request, who: Principal = Depends(require(Permission.MANAGE_KEYS)), session: AsyncSession = Depends(db_session, scope="function")
) -> None:
    """Remove the organization's key for a provider: its requests go back to the platform's key and price."""
    await delete_key(session, organization_id=who.organization_id, provider=provider.strip().lower())
    await session.commit()
    services(request).byok.forget(who.organization_id)

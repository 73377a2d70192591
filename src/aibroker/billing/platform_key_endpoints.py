"""The platform's provider keys (SUPER_ADMIN or the platform service key): store, list
(never the key), rotate, delete. See billing/platform_keys.py for how they are applied."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.billing.platform_keys import keyed_specs, seal_context
from aibroker.deps import db_session, require_admin
from aibroker.errors import BrokerError, InvalidRequest, NotFound
from aibroker.gateway.http import services
from aibroker.kit import crypto
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import PlatformProviderKey, ProviderActivity

router = APIRouter(tags=["Platform provider keys"], dependencies=[Depends(require_admin)])


class PlatformKeyCreate(BaseModel):
    provider: str = Field(max_length=60, description="A provider of this broker that takes a key, e.g. 'openai', 'anthropic'.")
    api_key: str = Field(min_length=8, max_length=500, description="The provider key. Stored sealed (AES-256-GCM); never shown again.")


class PlatformKeyRotate(BaseModel):
    api_key: str = Field(min_length=8, max_length=500, description="The new provider key; the old one stops being used.")


class PlatformKeyInfo(BaseModel):
    provider: str = Field(description="The provider the key is for.")
    hint: str = Field(description="The key's last 4 characters.")
    created_at: dt.datetime | None = Field(description="When it was first stored.")
    rotated_at: dt.datetime | None = Field(description="When it was last replaced (null: never).")
    last_used_at: dt.datetime | None = Field(default=None, description="When the provider last served a request (any key).")


def _token(raw: str) -> str:
    key = raw.strip()
    if not key or any(c.isspace() for c in key):
        raise InvalidRequest("api_key must be a single token without spaces", param="api_key")
    return key


def _provider(raw: str) -> str:
    name = raw.strip().lower()
    known = keyed_specs()
    if name not in known:
        raise InvalidRequest(f"provider '{raw}' does not take a key here; one of: {', '.join(sorted(known))}", param="provider",
                             code="unknown_provider")
    return name


async def _applied_now(request: Request) -> None:
    """This process uses the change at once; the others within AIBROKER_PLATFORM_KEYS_CACHE_SECONDS."""
    keys = services(request).platform_keys
    if keys is not None:
        await keys.refresh()


async def _info(session: AsyncSession, row: PlatformProviderKey) -> PlatformKeyInfo:
    used = await session.scalar(select(ProviderActivity.last_used_at).where(ProviderActivity.provider == row.provider))
    return PlatformKeyInfo(provider=row.provider, hint=row.display_hint, created_at=row.created_at, rotated_at=row.rotated_at,
                           last_used_at=used)


@router.post("/api/admin/provider-keys", response_model=PlatformKeyInfo, status_code=201)
async def create_platform_key(body: PlatformKeyCreate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> PlatformKeyInfo:
    """Store the platform's key for a provider; it is used instead of the environment's
    (409 `key_exists` when one is stored: rotate it instead)."""
    provider, key = _provider(body.provider), _token(body.api_key)
    if await session.scalar(select(PlatformProviderKey.id).where(PlatformProviderKey.provider == provider)):
        raise BrokerError(f"A platform key for '{provider}' is stored; rotate it.", status_code=409, code="key_exists")
    secret = services(request).settings.server.secret_key
    row = PlatformProviderKey(id=new_id("ppk"), provider=provider, sealed_key=crypto.seal(key, secret, context=seal_context(provider)),
                              key_id=crypto.key_id(secret), display_hint=key[-4:], created_at=utcnow())
    session.add(row)
    await session.flush()
    info = await _info(session, row)
    await session.commit()
    await _applied_now(request)
    return info


@router.get("/api/admin/provider-keys", response_model=list[PlatformKeyInfo])
async def list_platform_keys(session: AsyncSession = Depends(db_session, scope="function")) -> list[PlatformKeyInfo]:
    """The stored platform keys (last 4 characters only) and when each provider was last used."""
    rows = await session.scalars(select(PlatformProviderKey).order_by(PlatformProviderKey.provider))
    return [await _info(session, row) for row in rows]


@router.post("/api/admin/provider-keys/{provider}/rotate", response_model=PlatformKeyInfo)
async def rotate_platform_key(
    provider: str, body: PlatformKeyRotate, request: Request, session: AsyncSession = Depends(db_session, scope="function")
) -> PlatformKeyInfo:
    """Replace the stored key; requests use the new one without a restart."""
    row = await _stored(session, provider)
    key, secret = _token(body.api_key), services(request).settings.server.secret_key
    row.sealed_key, row.key_id = crypto.seal(key, secret, context=seal_context(row.provider)), crypto.key_id(secret)
    row.display_hint, row.rotated_at = key[-4:], utcnow()
    await session.flush()
    info = await _info(session, row)
    await session.commit()
    await _applied_now(request)
    return info


@router.delete("/api/admin/provider-keys/{provider}", status_code=204)
async def delete_platform_key(provider: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> None:
    """Remove the stored key: the environment's key (if set) is used again."""
    await session.delete(await _stored(session, provider))
    await session.commit()
    await _applied_now(request)


async def _stored(session: AsyncSession, provider: str) -> PlatformProviderKey:
    row = await session.scalar(select(PlatformProviderKey).where(PlatformProviderKey.provider == provider.strip().lower()))
    if row is None:
        raise NotFound(f"no platform key stored for provider '{provider}'", param="provider")
    return row

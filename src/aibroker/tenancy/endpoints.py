"""API keys of the caller's organization, and the platform admin's organization routes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.billing.batch import PostEntry
from aibroker.billing.service import post_entry
from aibroker.deps import db_session, require, require_admin
from aibroker.errors import InvalidRequest
from aibroker.gateway.http import services
from aibroker.kit.clock import utcnow
from aibroker.kit.money import to_micros
from aibroker.models import ApiKey, Organization
from aibroker.tenancy import service
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import Permission

router = APIRouter(tags=["Organizations and keys"])


class KeyCreate(BaseModel):
    name: str = Field(default="default", min_length=1, max_length=120)
    expires_at: dt.datetime | None = Field(default=None, description="Optional expiry (ISO datetime, UTC if no zone).")
    default_feature: str | None = Field(default=None, description="Feature used when a request names none.")
    rpm: int | None = Field(default=None, ge=1, description="This key's own requests-per-minute limit (on top of the plan's).")
    rph: int | None = Field(default=None, ge=1, description="This key's own requests-per-hour limit.")
    tpm: int | None = Field(default=None, ge=1, description="This key's own tokens-per-minute limit.")
    monthly_token_quota: int | None = Field(default=None, ge=1, description="This key's own monthly token quota.")


class KeyCreated(BaseModel):
    id: str
    key: str = Field(description="The API key itself. Shown only now: store it safely.")
    name: str
    expires_at: dt.datetime | None


class KeyInfo(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class OrganizationCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(default=None, max_length=80)
    plan: str = "free"
    credit: Decimal | None = Field(default=None, ge=0, description="Initial wallet credit in USD.")


@router.post("/api/keys", response_model=KeyCreated, status_code=201)
async def create_key(body: KeyCreate, who: Principal = Depends(require(Permission.MANAGE_KEYS)), session: AsyncSession = Depends(db_session, scope="function")) -> KeyCreated:
    """Create an API key for the caller's organization. The key is returned once."""
    expires = body.expires_at
    if expires is not None:
        expires = expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)
        if expires <= utcnow():
            raise InvalidRequest("expires_at must be in the future", param="expires_at")
    issued = await service.create_api_key(
        session, organization_id=who.organization_id, name=body.name, expires_at=expires, default_feature=body.default_feature,
        limits=body.model_dump(include={"rpm", "rph", "tpm", "monthly_token_quota"}),
    )
    return KeyCreated(id=issued.id, key=issued.key, name=body.name, expires_at=expires)


@router.get("/api/keys", response_model=list[KeyInfo])
async def list_keys(who: Principal = Depends(require(Permission.MANAGE_KEYS)), session: AsyncSession = Depends(db_session, scope="function")) -> list[KeyInfo]:
    """The organization's API keys (never the keys themselves)."""
    rows = await session.scalars(select(ApiKey).where(ApiKey.organization_id == who.organization_id).order_by(ApiKey.created_at))
    return [
        KeyInfo(id=k.id, name=k.name, prefix=k.display_prefix, created_at=k.created_at, expires_at=k.expires_at, revoked_at=k.revoked_at)
        for k in rows
    ]


@router.delete("/api/keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, request: Request, who: Principal = Depends(require(Permission.MANAGE_KEYS)), session: AsyncSession = Depends(db_session, scope="function")) -> None:
    """Revoke a key: it stops working at once in this process, within seconds elsewhere."""
    await service.revoke_api_key(session, organization_id=who.organization_id, key_id=key_id)
    await session.commit()
    services(request).auth.forget()


@router.post("/api/admin/organizations", status_code=201, dependencies=[Depends(require_admin)])
async def admin_create_organization(
    body: OrganizationCreate, request: Request, session: AsyncSession = Depends(db_session, scope="function")
) -> dict:
    """Platform admin: create an organization (with its wallet and first API key)."""
    org = await service.create_organization(session, name=body.name, slug=body.slug, plan=body.plan)
    issued = await service.create_api_key(session, organization_id=org.id)
    await session.commit()
    balance = 0
    if body.credit:
        entry = PostEntry(org.id, "recharge", to_micros(body.credit), description="initial credit")
        balance = (await post_entry(services(request).writer, entry)).balance_after
    return {"organization_id": org.id, "slug": org.slug, "plan": org.plan, "api_key": issued.key, "balance_micros": balance}


@router.get("/api/admin/organizations", dependencies=[Depends(require_admin)])
async def admin_list_organizations(session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Platform admin: every organization."""
    rows = await session.scalars(select(Organization).order_by(Organization.created_at))
    return {"data": [{"id": o.id, "name": o.name, "slug": o.slug, "plan": o.plan, "status": o.status} for o in rows]}

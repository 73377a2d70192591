"""API keys of the caller's organization, and the platform admin's organization routes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.billing.batch import PostEntry
from aibroker.billing.service import post_entry
from aibroker.deps import db_session, require, require_admin
from aibroker.errors import InvalidRequest, NotFound
from aibroker.gateway.http import services
from aibroker.kit.clock import utcnow
from aibroker.kit.money import to_micros
from aibroker.models import ApiKey, Organization
from aibroker.routing.router import known_profiles
from aibroker.tenancy import org_admin, service
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import Permission
from aibroker.tenancy.routing_authority import check_grant
from aibroker.tenancy.scoped import get_scoped

router = APIRouter(tags=["Organizations and keys"])


# Bounds that fit the columns: INTEGER (32-bit) and BIGINT (64-bit) alike.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
ProfileName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
GroupKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]


class KeyLimits(BaseModel):
    """A key's own limits, applied on top of its organization's plan (null: none of its own)."""

    rpm: int | None = Field(default=None, ge=1, le=INT32_MAX, description="This key's own requests-per-minute limit (on top of the plan's).")
    rph: int | None = Field(default=None, ge=1, le=INT32_MAX, description="This key's own requests-per-hour limit.")
    tpm: int | None = Field(default=None, ge=1, le=INT32_MAX, description="This key's own tokens-per-minute limit.")
    monthly_token_quota: int | None = Field(default=None, ge=1, le=INT64_MAX, description="Tokens per calendar month (UTC) for this key.")
    daily_token_quota: int | None = Field(default=None, ge=1, le=INT64_MAX, description="Tokens per calendar day (UTC) for this key.")
    monthly_request_quota: int | None = Field(default=None, ge=1, le=INT32_MAX, description="Requests per calendar month (UTC) for this key.")
    daily_request_quota: int | None = Field(default=None, ge=1, le=INT32_MAX, description="Requests per calendar day (UTC) for this key.")


KEY_LIMITS = tuple(KeyLimits.model_fields)


class KeyRouting(BaseModel):
    """The key's routing authority. Only the platform (or a caller holding it) grants it: a
    profile or group can lift the plan's limits."""

    profile: ProfileName | None = Field(default=None, description="The routing profile this key's requests run with (null: `default`).")
    allowed_profiles: list[ProfileName] | None = Field(
        default=None, max_length=50, description="Profiles this key's requests may name (`x-aibroker-profile` / body `profile`).")
    allowed_groups: list[GroupKey] | None = Field(
        default=None, max_length=50, description="Groups this key's requests may name (`x-aibroker-group` / body `group`).")


KEY_ROUTING = tuple(KeyRouting.model_fields)


class KeyGuardFields(BaseModel):
    """The key's guards (docs/guardrails-keys.md): where it may be used from, and whether its requests must be signed."""

    allowed_ips: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=100,
        description="IPv4 / IPv6 addresses or CIDR networks this key may be used from (null or absent: anywhere). "
                    "Outside them: 403 `ip_not_allowed`.")
    signing: bool | None = Field(
        default=None, description="true: requests must carry `X-Aibroker-Signature` (HMAC-SHA256 over timestamp + body); "
                                  "a new signing secret is generated and returned once. On update, false stops requiring it.")
    signing_window_seconds: int | None = Field(
        default=None, ge=10, le=3600, description="How far a signed request's timestamp may be from the broker's clock "
                                                  "(default AIBROKER_SIGNATURE_WINDOW_SECONDS, 300).")


KEY_GUARD = tuple(KeyGuardFields.model_fields)


class KeyCreate(KeyLimits, KeyRouting, KeyGuardFields):
    name: str = Field(default="default", min_length=1, max_length=120)
    expires_at: dt.datetime | None = Field(default=None, description="Optional expiry (ISO datetime, UTC if no zone).")
    default_feature: str | None = Field(default=None, min_length=1, max_length=80, description="Feature used when a request names none.")


class KeyUpdate(KeyLimits, KeyRouting, KeyGuardFields):
    """Only the fields sent change; send null to remove one of the key's own limits (or its profile, allowed profiles or groups)."""

    name: str | None = Field(default=None, min_length=1, max_length=120)


class KeyCreated(BaseModel):
    id: str
    key: str = Field(description="The API key itself. Shown only now: store it safely.")
    name: str
    expires_at: dt.datetime | None
    signing_secret: str | None = Field(default=None, description="The request-signing secret (when `signing` was asked). Shown only now.")


class KeyInfo(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    limits: dict[str, int | None] = Field(default_factory=dict, description="The key's own limits (null: none).")
    profile: str | None = Field(default=None, description="The routing profile its requests run with (null: `default`).")
    allowed_profiles: list[str] = Field(default_factory=list, description="Profiles its requests may name.")
    allowed_groups: list[str] = Field(default_factory=list, description="Groups its requests may name.")
    allowed_ips: list[str] | None = Field(default=None, description="Networks it may be used from (null: anywhere).")
    signing: bool = Field(default=False, description="Whether its requests must be signed.")
    signing_window_seconds: int | None = Field(default=None, description="Its own replay window (null: the broker's default).")
    last_used_at: dt.datetime | None = Field(default=None, description="When it last authenticated a request (written every few seconds, not per request).")
    signing_secret: str | None = Field(default=None, description="A new signing secret, only in the answer that generated it.")


def _key_info(key: ApiKey) -> KeyInfo:
    return KeyInfo(id=key.id, name=key.name, prefix=key.display_prefix, created_at=key.created_at, expires_at=key.expires_at,
                   revoked_at=key.revoked_at, limits={name: getattr(key, name) for name in KEY_LIMITS},
                   profile=key.profile, allowed_profiles=list(key.allowed_profiles or []), allowed_groups=list(key.allowed_groups or []),
                   allowed_ips=key.allowed_ips, signing=key.sealed_signing_secret is not None,
                   signing_window_seconds=key.signing_window_seconds, last_used_at=key.last_used_at)


def _apply_guard(key: ApiKey, changes: dict, secret_key: str) -> str | None:
    """Set the key's guard fields from a create / update; the new signing secret, if one was made."""
    from aibroker.tenancy.key_guard import parse_networks

    if "allowed_ips" in changes:
        ips = changes["allowed_ips"]
        key.allowed_ips = parse_networks(ips) if ips else None
    if "signing_window_seconds" in changes:
        key.signing_window_seconds = changes["signing_window_seconds"]
    signing = changes.get("signing")
    if signing is False:
        key.sealed_signing_secret, key.signing_key_id = None, None
    elif signing:
        import secrets

        from aibroker.kit import crypto

        secret = "abs_" + secrets.token_urlsafe(32)
        key.sealed_signing_secret = crypto.seal(secret, secret_key, context=f"signing:{key.id}")
        key.signing_key_id = crypto.key_id(secret_key)
        return secret
    return None


def _routing_changes(request: Request, who: Principal, changes: dict) -> dict:
    """The routing fields of a create / update, checked: known profiles, and nothing the
    caller could not use itself (403 `profile_not_allowed`)."""
    routing = {name: changes[name] for name in KEY_ROUTING if name in changes}
    profiles = [*(routing.get("allowed_profiles") or [])]
    if "profile" in routing:
        profiles.append(routing["profile"])
    check_grant(who, services(request).settings.accounts.role_profiles, profiles=profiles, groups=routing.get("allowed_groups") or [])
    known = known_profiles(services(request))
    for name in profiles:
        if name is not None and name not in known:
            raise InvalidRequest(f"Unknown profile '{name}'. Known profiles: {', '.join(sorted(known))}.",
                                 param="profile", code="unknown_profile")
    for name in ("allowed_profiles", "allowed_groups"):
        if routing.get(name) is not None:
            routing[name] = sorted(set(routing[name]))
    return routing


class OrganizationCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(default=None, max_length=80)
    plan: str = Field(default="free", min_length=1, max_length=40)
    # Up to a billion USD, in whole micros: fits the wallet's BIGINT with room to spare.
    credit: Decimal | None = Field(default=None, ge=0, le=Decimal(10**9), decimal_places=6, allow_inf_nan=False,
                                   description="Initial wallet credit in USD.")


@router.post("/api/keys", response_model=KeyCreated, status_code=201)
async def create_key(
    body: KeyCreate, request: Request, who: Principal = Depends(require(Permission.MANAGE_KEYS)),
    session: AsyncSession = Depends(db_session, scope="function"),
) -> KeyCreated:
    """Create an API key for the caller's organization. The key is returned once. `profile`,
    `allowed_profiles` and `allowed_groups` are granted by the platform's service key (a caller
    may only pass on what it holds itself: else 403 `profile_not_allowed`)."""
    routing = _routing_changes(request, who, body.model_dump(include=set(KEY_ROUTING), exclude_unset=True))
    expires = body.expires_at
    if expires is not None:
        expires = expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)
        if expires <= utcnow():
            raise InvalidRequest("expires_at must be in the future", param="expires_at")
    issued = await service.create_api_key(
        session, organization_id=who.organization_id, name=body.name, expires_at=expires, default_feature=body.default_feature,
        limits=body.model_dump(include=set(KEY_LIMITS)), routing=routing,
    )
    row = await session.get(ApiKey, issued.id)
    assert row is not None
    secret = _apply_guard(row, body.model_dump(include=set(KEY_GUARD), exclude_unset=True), services(request).settings.server.secret_key)
    await session.flush()
    return KeyCreated(id=issued.id, key=issued.key, name=body.name, expires_at=expires, signing_secret=secret)


@router.get("/api/keys", response_model=list[KeyInfo])
async def list_keys(who: Principal = Depends(require(Permission.MANAGE_KEYS)), session: AsyncSession = Depends(db_session, scope="function")) -> list[KeyInfo]:
    """The organization's API keys (never the keys themselves)."""
    rows = await session.scalars(select(ApiKey).where(ApiKey.organization_id == who.organization_id).order_by(ApiKey.created_at))
    return [_key_info(k) for k in rows]


@router.patch("/api/keys/{key_id}", response_model=KeyInfo)
async def update_key(
    key_id: str, body: KeyUpdate, request: Request, who: Principal = Depends(require(Permission.MANAGE_KEYS)),
    session: AsyncSession = Depends(db_session, scope="function"),
) -> KeyInfo:
    """Change a key's name, its own limits and quotas, or (the platform) its routing profile,
    allowed profiles and groups: only the fields sent; null removes one. Counters already used
    in the current window keep counting against the new limit."""
    key = await get_scoped(session, ApiKey, who.organization_id, key_id, what="API key")
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise InvalidRequest("name cannot be null", param="name")
    changes.update(_routing_changes(request, who, changes))
    guard = {name: changes.pop(name) for name in KEY_GUARD if name in changes}
    if guard.get("signing") is None:
        guard.pop("signing", None)
    for name, value in changes.items():
        setattr(key, name, value)
    secret = _apply_guard(key, guard, services(request).settings.server.secret_key)
    await session.flush()
    info = _key_info(key)
    info.signing_secret = secret
    await session.commit()
    limits = services(request).limits
    if limits is not None:
        limits.tenants.forget()  # this process applies the new limits at once; others within auth_cache_seconds
    services(request).auth.forget()  # and the key's new routing profile
    return info


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


class OrganizationChange(BaseModel):
    status: Literal["trial", "active", "suspended", "cancelled"] | None = None
    plan: str | None = Field(default=None, min_length=1, max_length=40)
    name: str | None = Field(default=None, min_length=1, max_length=200)


@router.patch("/api/admin/organizations/{organization_id}", dependencies=[Depends(require_admin)])
async def admin_change_organization(
    organization_id: str, body: OrganizationChange, request: Request, session: AsyncSession = Depends(db_session, scope="function")
) -> dict:
    """Platform admin: suspend, cancel or reactivate an organization, change its plan or name.
    A suspended or cancelled organization's keys, users and codes get 403 `organization_inactive`."""
    org = await session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"no organization '{organization_id}'")
    view = await org_admin.change_organization(session, org, plan=body.plan, status=body.status, name=body.name)
    await session.commit()
    services(request).auth.forget()  # this process at once; others within AIBROKER_AUTH_CACHE_SECONDS
    return view


@router.get("/api/admin/organizations", dependencies=[Depends(require_admin)])
async def admin_list_organizations(session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Platform admin: every organization."""
    return {"data": await org_admin.list_organizations(session)}

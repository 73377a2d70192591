"""Organizations and API keys. Services take a session and never commit."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.config import get_settings
from aibroker.errors import Conflict, InvalidRequest, NotFound
from aibroker.kit.clock import utcnow
from aibroker.kit.crypto import hash_api_key, new_api_key
from aibroker.kit.ids import new_id
from aibroker.models import ApiKey, Organization, Wallet


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    key: str  # shown once, never stored


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:60] or "org"


async def create_organization(
    session: AsyncSession, *, name: str, slug: str | None = None, plan: str = "free"
) -> Organization:
    """An organization with its (empty) wallet."""
    name = name.strip()
    if not name:
        raise InvalidRequest("organization name must not be empty", param="name")
    slug = slugify(slug or name)
    if await session.scalar(select(Organization.id).where(Organization.slug == slug)):
        raise Conflict(f"an organization with slug '{slug}' already exists", param="slug")
    from aibroker.limits.plan_service import (
        require_plan,  # plans are data: unknown slugs are refused
    )

    plan = plan.strip().lower()
    await require_plan(session, plan)
    org = Organization(id=new_id("org"), name=name, slug=slug, plan=plan, status="active")
    session.add(org)
    billing = get_settings().billing
    session.add(
        Wallet(
            id=new_id("wal"),
            organization_id=org.id,
            currency=billing.currency,
            balance_micros=0,
            held_micros=0,
            low_balance_threshold_micros=billing.low_balance_threshold_micros,
        )
    )
    await session.flush()
    return org


async def find_organization(session: AsyncSession, ref: str) -> Organization:
    """By id, slug or exact name (CLI arguments accept any of them)."""
    rows = (
        await session.scalars(
            select(Organization).where(or_(Organization.id == ref, Organization.slug == ref, Organization.name == ref))
        )
    ).all()
    if not rows:
        raise NotFound(f"no organization '{ref}' (give its id, slug or name)")
    if len(rows) > 1:
        exact = [o for o in rows if o.id == ref or o.slug == ref]
        if len(exact) != 1:
            raise Conflict(f"'{ref}' names several organizations; use the id or slug")
        return exact[0]
    return rows[0]


async def create_api_key(
    session: AsyncSession,
    *,
    organization_id: str,
    name: str = "default",
    expires_at=None,  # type: ignore[no-untyped-def]
    default_feature: str | None = None,
    limits: dict[str, int | None] | None = None,  # the key's own limits and quotas (endpoints.KeyLimits)
    routing: dict[str, Any] | None = None,  # profile / allowed_profiles / allowed_groups, already checked
) -> IssuedKey:
    key = new_api_key()
    row = ApiKey(
        id=new_id("key"),
        organization_id=organization_id,
        name=name,
        key_hash=hash_api_key(key),
        display_prefix=key[:10],
        expires_at=expires_at,
        default_feature=default_feature,
        **(limits or {}),
        **(routing or {}),
    )
    session.add(row)
    await session.flush()
    return IssuedKey(id=row.id, key=key)


async def revoke_api_key(session: AsyncSession, *, organization_id: str, key_id: str) -> None:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.organization_id == organization_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"no active API key '{key_id}' in this organization")

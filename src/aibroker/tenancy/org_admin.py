"""The platform's organization administration, shared by PATCH/GET /api/admin/organizations
and `aibroker org list | show | update`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import InvalidRequest
from aibroker.kit.clock import utcnow
from aibroker.models import ApiKey, Organization, Wallet

STATUSES = ("trial", "active", "suspended", "cancelled")


def org_view(org: Organization) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "slug": org.slug, "plan": org.plan, "status": org.status}


async def list_organizations(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.scalars(select(Organization).order_by(Organization.created_at))
    return [org_view(o) for o in rows]


async def organization_details(session: AsyncSession, org: Organization) -> dict[str, Any]:
    """The view plus its wallet and how many API keys it has (never the keys)."""
    wallet = await session.scalar(select(Wallet).where(Wallet.organization_id == org.id))
    keys = await session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.organization_id == org.id))
    return {**org_view(org), "created_at": org.created_at.isoformat() if org.created_at else None,
            "balance_micros": wallet.balance_micros if wallet else 0, "held_micros": wallet.held_micros if wallet else 0,
            "api_keys": int(keys or 0)}


async def change_organization(
    session: AsyncSession, org: Organization, *, plan: str | None = None, status: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """Change the plan (which must exist), status or name; the caller commits (and makes the
    auth cache forget: other processes see it within AIBROKER_AUTH_CACHE_SECONDS)."""
    if plan is not None:
        from aibroker.limits.plan_service import require_plan

        await require_plan(session, plan.lower())
        org.plan = plan.lower()
    if status is not None:
        if status not in STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}", param="status")
        org.status = status
    if name is not None:
        org.name = name.strip() or org.name
    org.updated_at = utcnow()
    return org_view(org)

"""Plans for checkout and the users-per-organization limit (seed 002).

The `plans` table (limits domain, migration 0006) is the truth when it has the plan:
its `price_micros` and `max_users` (NULL: no limit). PLANS below, the seed's table, is the
fallback for databases without that row."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import InvalidRequest, PermissionDenied
from aibroker.models import Membership

try:  # the limits domain's table; absent in a checkout without it
    from aibroker.models import PlanRow
except ImportError:  # pragma: no cover
    PlanRow = None  # type: ignore[assignment,misc]


@dataclass(frozen=True, slots=True)
class Plan:
    name: str  # stored lowercase in organizations.plan
    monthly_price_cents: int  # USD
    max_users: int
    max_recordings: int
    max_storage_gb: int


# Seed 002, "Planes Disponibles".
PLANS: dict[str, Plan] = {
    p.name: p
    for p in (
        Plan("free", 0, 1, 10, 1),
        Plan("starter", 2900, 5, 100, 10),
        Plan("professional", 9900, 20, 500, 50),
        Plan("enterprise", 29900, 100, 2000, 200),
    )
}


async def _row(session: AsyncSession, slug: str):  # type: ignore[no-untyped-def]
    return await session.get(PlanRow, slug) if PlanRow is not None and slug else None


async def get_plan(session: AsyncSession, name: str) -> Plan:
    slug = (name or "").strip().lower()
    row = await _row(session, slug)
    if row is not None:
        fallback = PLANS.get(slug)
        return Plan(slug, row.price_micros // 10_000, row.max_users if row.max_users is not None else 10**9,
                    fallback.max_recordings if fallback else 0, fallback.max_storage_gb if fallback else 0)
    plan = PLANS.get(slug)
    if plan is None:
        raise InvalidRequest(f"unknown plan '{name}'; one of {', '.join(p.upper() for p in PLANS)}", param="plan", code="unknown_plan")
    return plan


async def paid_plan(session: AsyncSession, name: str) -> Plan:
    plan = await get_plan(session, name)
    if plan.monthly_price_cents == 0:
        raise InvalidRequest(f"the {plan.name.upper()} plan is free: there is nothing to pay", param="plan", code="plan_not_purchasable")
    return plan


async def max_users(session: AsyncSession, plan_name: str) -> int | None:
    """The plan's user limit; None means no limit. Unknown plans get FREE's limit."""
    slug = (plan_name or "").lower()
    row = await _row(session, slug)
    if row is not None:
        return row.max_users
    plan = PLANS.get(slug)
    return plan.max_users if plan else PLANS["free"].max_users


async def ensure_room_for_user(session: AsyncSession, *, organization_id: str, plan_name: str) -> None:
    """403 naming the limit when the organization already has as many users as its plan allows."""
    limit = await max_users(session, plan_name)
    if limit is None:
        return
    count = await session.scalar(
        select(func.count()).select_from(Membership).where(Membership.organization_id == organization_id)
    )
    if (count or 0) >= limit:
        raise PermissionDenied(
            f"The {plan_name.upper()} plan allows {limit} user(s) and the organization has {count}: "
            f"upgrade the plan to add more (limit: max_users).",
            code="plan_limit_max_users",
            extra={"limit": "max_users", "max": limit},
        )

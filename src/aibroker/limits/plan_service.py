"""Plan CRUD (admin API and CLI). Services take a session and never commit."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import Conflict, InvalidRequest, NotFound
from aibroker.kit.clock import utcnow
from aibroker.limits.defaults import DEFAULT_PLANS
from aibroker.limits.plans import Plan, ensure_default_plans
from aibroker.models import Organization, PlanRow

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
BUILTIN = frozenset(p["slug"] for p in DEFAULT_PLANS)

# Every limit lands in an INTEGER column (token quotas, bytes and prices in BIGINT):
# bounded here, so a larger number is a 422 and never a database overflow.
INT32 = 2**31 - 1
BIGINT = 2**63 - 1
_Limit = Field(default=None, ge=0, le=INT32)


class PlanFields(BaseModel):
    """Every limit is optional: null (or absent) means "no limit"."""

    name: str | None = Field(default=None, min_length=1, max_length=120)
    price_micros: int | None = Field(default=None, ge=0, le=BIGINT, description="Monthly price in micro-units (1 USD = 1,000,000).")
    max_users: int | None = _Limit
    max_recordings: int | None = _Limit
    max_storage_bytes: int | None = Field(default=None, ge=0, le=BIGINT)
    requests_per_minute: int | None = Field(default=None, ge=0, le=INT32, description="AI requests per minute, whole organization.")
    requests_per_hour: int | None = Field(default=None, ge=0, le=INT32, description="AI requests per hour, whole organization.")
    tokens_per_minute: int | None = Field(default=None, ge=0, le=INT32, description="Tokens (input + output) per minute, whole organization.")
    user_requests_per_minute: int | None = Field(default=None, ge=0, le=INT32, description="AI requests per minute for each end user.")
    user_requests_per_hour: int | None = Field(default=None, ge=0, le=INT32, description="AI requests per hour for each end user.")
    user_tokens_per_minute: int | None = Field(default=None, ge=0, le=INT32, description="Tokens (input + output) per minute for each end user.")
    monthly_token_quota: int | None = Field(default=None, ge=0, le=BIGINT, description="Tokens per calendar month (UTC).")
    daily_token_quota: int | None = Field(default=None, ge=0, le=BIGINT, description="Tokens per calendar day (UTC).")
    monthly_request_quota: int | None = Field(default=None, ge=0, le=INT32, description="Requests per calendar month (UTC).")
    daily_request_quota: int | None = Field(default=None, ge=0, le=INT32, description="Requests per calendar day (UTC).")
    allowed_models: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=1000, description="Catalog ids or names; null: every model.")
    margin_bps: int | None = Field(default=None, ge=0, le=100_000, description="Margin in basis points; null: platform default.")
    max_prompt_chars: int | None = Field(default=None, ge=1, le=INT32, description="Characters of prompt text per request.")
    max_messages: int | None = Field(default=None, ge=1, le=INT32, description="Messages per chat request.")
    batch_discount_bps: int | None = Field(
        default=None, ge=0, le=10_000,
        description="Discount off what /v1/batches lines are charged, in basis points (5000: half price); null: none.")


class PlanCreate(PlanFields):
    slug: str = Field(min_length=1, max_length=40, description="Lowercase id, e.g. 'team-2026'.")
    name: str = Field(min_length=1, max_length=120)


class PlanUpdate(PlanFields):
    """Only the fields sent are changed (send null to remove a limit)."""


def plan_view(row: PlanRow, organizations: int | None = None) -> dict[str, Any]:
    data = Plan.from_row(row).as_dict()
    data["builtin"] = row.slug in BUILTIN
    if organizations is not None:
        data["organizations"] = organizations
    return data


async def list_plans(session: AsyncSession) -> list[dict[str, Any]]:
    await ensure_default_plans(session)
    counts = dict((await session.execute(select(Organization.plan, func.count()).group_by(Organization.plan))).all())
    rows = (await session.scalars(select(PlanRow).order_by(PlanRow.price_micros, PlanRow.slug))).all()
    return [plan_view(r, int(counts.get(r.slug, 0))) for r in rows]


async def get_plan(session: AsyncSession, slug: str) -> PlanRow:
    row = await session.get(PlanRow, slug)
    if row is None:
        raise NotFound(f"no plan '{slug}'", param="slug")
    return row


async def require_plan(session: AsyncSession, slug: str) -> None:
    """Refuse an unknown plan with the list of known ones (default plans are re-ensured first)."""
    if await session.get(PlanRow, slug) is None and slug in BUILTIN:
        await ensure_default_plans(session)
    if await session.get(PlanRow, slug) is None:
        known = ", ".join((await session.scalars(select(PlanRow.slug).order_by(PlanRow.price_micros, PlanRow.slug))).all())
        raise InvalidRequest(f"unknown plan '{slug}' (known plans: {known})", param="plan", code="unknown_plan")


async def create_plan(session: AsyncSession, body: PlanCreate) -> PlanRow:
    if not SLUG.match(body.slug):
        raise InvalidRequest("slug must be lowercase letters, digits, '-' or '_' (max 40)", param="slug")
    if await session.get(PlanRow, body.slug) is not None:
        raise Conflict(f"a plan '{body.slug}' already exists", param="slug")
    data = body.model_dump()
    data["price_micros"] = data["price_micros"] or 0
    row = PlanRow(**data, created_at=utcnow())
    session.add(row)
    await session.flush()
    return row


async def update_plan(session: AsyncSession, slug: str, body: PlanUpdate) -> PlanRow:
    row = await get_plan(session, slug)
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise InvalidRequest("name cannot be null", param="name")
    if "price_micros" in changes and changes["price_micros"] is None:
        changes["price_micros"] = 0
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    await session.flush()
    return row


async def delete_plan(session: AsyncSession, slug: str) -> None:
    row = await get_plan(session, slug)
    if slug in BUILTIN:
        raise Conflict(f"'{slug}' is a default plan; edit it instead of deleting it", param="slug")
    users = await session.scalar(select(func.count()).select_from(Organization).where(Organization.plan == slug))
    if users:
        raise Conflict(f"{users} organization(s) are on plan '{slug}'; move them first", param="slug")
    await session.delete(row)
    await session.flush()

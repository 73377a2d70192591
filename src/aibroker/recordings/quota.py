"""Seed 002's plan limits on recordings: how many (`max_recordings`) and how many bytes
(`max_storage_gb`, stored as plans.max_storage_bytes). Use is one row per organization,
moved by conditional UPDATEs: a limit holds exactly however many processes upload at once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.db import upsert_insert
from aibroker.errors import PayloadTooLarge, PermissionDenied
from aibroker.models import PlanRow, StorageUsage
from aibroker.tenancy.plans import PLANS

GB = 1024**3


@dataclass(frozen=True, slots=True)
class Limits:
    max_recordings: int | None  # None: no limit
    max_storage_bytes: int | None


async def limits_for(session: AsyncSession, plan: str) -> Limits:
    """The plans table's limits (NULL: none); seed 002's table for a plan the table lacks."""
    slug = (plan or "").lower()
    row = await session.get(PlanRow, slug)
    if row is not None:
        return Limits(row.max_recordings, row.max_storage_bytes)
    seed = PLANS.get(slug) or PLANS["free"]
    return Limits(seed.max_recordings, seed.max_storage_gb * GB)


async def _ensure_row(session: AsyncSession, organization_id: str) -> None:
    stmt = upsert_insert(session, StorageUsage).values(organization_id=organization_id, used_bytes=0, recordings=0)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["organization_id"]))


async def usage(session: AsyncSession, organization_id: str) -> tuple[int, int]:
    """(bytes stored, recordings) of the organization."""
    row = (await session.execute(
        select(StorageUsage.used_bytes, StorageUsage.recordings).where(StorageUsage.organization_id == organization_id)
    )).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def quota_exceeded(limits: Limits, used: int, more: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Storing {more} more bytes would pass the plan's storage limit: {used} of {limits.max_storage_bytes} bytes "
        "are in use. Delete recordings or upgrade the plan.",
        code="storage_quota_exceeded",
        extra={"limit": "max_storage_gb", "max_bytes": limits.max_storage_bytes, "used_bytes": used},
    )


async def check_room(session: AsyncSession, organization_id: str, limits: Limits, more: int) -> None:
    """413 when `more` bytes would not fit now (a check, not a reservation)."""
    if limits.max_storage_bytes is None or more <= 0:
        return
    used, _ = await usage(session, organization_id)
    if used + more > limits.max_storage_bytes:
        raise quota_exceeded(limits, used, more)


async def take_recording(session: AsyncSession, organization_id: str, limits: Limits) -> None:
    await _ensure_row(session, organization_id)
    stmt = update(StorageUsage).where(StorageUsage.organization_id == organization_id)
    if limits.max_recordings is not None:
        stmt = stmt.where(StorageUsage.recordings < limits.max_recordings)
    result = await session.execute(stmt.values(recordings=StorageUsage.recordings + 1))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise PermissionDenied(
            f"The plan allows {limits.max_recordings} recording(s) and the organization has that many: "
            "delete some or upgrade the plan (limit: max_recordings).",
            code="plan_limit_max_recordings",
            extra={"limit": "max_recordings", "max": limits.max_recordings},
        )


async def take_bytes(session: AsyncSession, organization_id: str, limits: Limits, more: int) -> None:
    """Count `more` bytes (negative: give back); 413 when they would pass the limit."""
    if more == 0:
        return
    await _ensure_row(session, organization_id)
    stmt = update(StorageUsage).where(StorageUsage.organization_id == organization_id)
    if limits.max_storage_bytes is not None and more > 0:
        stmt = stmt.where(StorageUsage.used_bytes + more <= limits.max_storage_bytes)
    result = await session.execute(stmt.values(used_bytes=StorageUsage.used_bytes + more))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        used, _ = await usage(session, organization_id)
        raise quota_exceeded(limits, used, more)


async def release(session: AsyncSession, organization_id: str, *, stored_bytes: int, recordings: int) -> None:
    """A deleted recording gives its bytes and its place back."""
    await session.execute(
        update(StorageUsage).where(StorageUsage.organization_id == organization_id).values(
            used_bytes=StorageUsage.used_bytes - stored_bytes, recordings=StorageUsage.recordings - recordings,
        )
    )

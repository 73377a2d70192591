"""The one way to query organization-owned rows: always filtered by the organization id.

    rows = await session.scalars(scoped(ApiKey, org_id).where(ApiKey.revoked_at.is_(None)))

A model is organization-owned when it has an `organization_id` column; asking for another
model is a programming error, caught at once."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select

from aibroker.errors import NotFound

M = TypeVar("M")


def scoped(model: type[M], organization_id: str, *columns: Any) -> Select[Any]:
    """SELECT model (or the given columns) WHERE model.organization_id = organization_id."""
    column = getattr(model, "organization_id", None)
    if column is None:
        raise TypeError(f"{model.__name__} is not organization-owned (no organization_id)")
    if not organization_id:
        raise ValueError("scoped() needs an organization id")
    return select(*(columns or (model,))).where(column == organization_id)


async def get_scoped(session: Any, model: type[M], organization_id: str, row_id: str, *, what: str | None = None) -> M:
    """One row of the organization by id; 404 (never 403) when it belongs to someone else."""
    row = await session.scalar(scoped(model, organization_id).where(model.id == row_id))  # type: ignore[attr-defined]
    if row is None:
        raise NotFound(f"no {what or model.__name__} '{row_id}' in this organization")
    return row

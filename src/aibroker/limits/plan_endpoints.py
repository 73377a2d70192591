"""Platform admin: plans CRUD at /api/admin/plans."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.deps import db_session, require_admin
from aibroker.gateway.http import services
from aibroker.limits import plan_service
from aibroker.limits.plan_service import PlanCreate, PlanUpdate

router = APIRouter(prefix="/api/admin/plans", tags=["Plans"], dependencies=[Depends(require_admin)])


async def _reload(request: Request, session: AsyncSession) -> None:
    await session.commit()
    await services(request).plans.load()  # this process sees the change at once; others within the refresh


@router.get("")
async def list_plans(session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Every plan with its limits and how many organizations are on it."""
    return {"data": await plan_service.list_plans(session)}


@router.get("/{slug}")
async def get_plan(slug: str, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """One plan."""
    return plan_service.plan_view(await plan_service.get_plan(session, slug))


@router.post("", status_code=201)
async def create_plan(body: PlanCreate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Create a custom plan. Limits left out (or null) are unlimited."""
    row = await plan_service.create_plan(session, body)
    view = plan_service.plan_view(row)
    await _reload(request, session)
    return view


@router.patch("/{slug}")
async def update_plan(slug: str, body: PlanUpdate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Change a plan's fields (only those sent). Every organization on it follows."""
    row = await plan_service.update_plan(session, slug, body)
    view = plan_service.plan_view(row)
    await _reload(request, session)
    return view


@router.delete("/{slug}", status_code=204)
async def delete_plan(slug: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> None:
    """Delete a custom plan nobody is on (default plans can be edited, not deleted)."""
    await plan_service.delete_plan(session, slug)
    await _reload(request, session)

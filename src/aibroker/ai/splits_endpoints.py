"""A/B splits of a feature's traffic across models (/api/ai/splits), their per-arm report,
and feedback on answered requests (POST /api/ai/feedback).

Writing a split needs MANAGE_KEYS (OWNER, ADMIN, API keys); its report needs VIEW_USAGE;
feedback needs USE_AI_BROKER. Everything is scoped to the caller's organization."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.ai import splits_service as service
from aibroker.ai.schemas import FeedbackCreate, SplitCreate, SplitUpdate
from aibroker.deps import db_session, require
from aibroker.gateway.http import services
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import Permission

router = APIRouter(prefix="/api/ai", tags=["AI workspace: A/B splits"])
_write = require(Permission.MANAGE_KEYS)
_read = require(Permission.VIEW_USAGE)
_session = Depends(db_session, scope="function")


async def _reload(request: Request, session: AsyncSession) -> None:
    """Commit, then reload this process's splits at once (other processes within seconds)."""
    await session.commit()
    book = getattr(services(request).gateway.router, "splits", None)
    if book is not None:
        await book.reload()


@router.get("/splits")
async def list_splits(who: Principal = Depends(_read), session: AsyncSession = _session) -> dict[str, Any]:
    """The organization's splits."""
    return {"object": "list", "data": [service.split_view(r) for r in await service.list_for(session, who)]}


@router.post("/splits", status_code=201)
async def create_split(body: SplitCreate, request: Request, who: Principal = Depends(_write), session: AsyncSession = _session) -> dict[str, Any]:
    """Split a feature's traffic across models: `{"feature", "arms": [{"model", "weight", "name"?}]}`.
    Weights are whole percents summing to 100; every model must be a known chat model (400
    otherwise). It applies to the feature's chat requests that name no model (or `auto`), sticky
    per end user. One split per feature (409 `split_exists`)."""
    row = await service.create(session, who, services(request).catalog, body)
    view = service.split_view(row)
    await _reload(request, session)
    return view


@router.get("/splits/{split_id}")
async def get_split(split_id: str, who: Principal = Depends(_read), session: AsyncSession = _session) -> dict[str, Any]:
    """One split."""
    return service.split_view(await service.get(session, who, split_id))


@router.put("/splits/{split_id}")
async def update_split(split_id: str, body: SplitUpdate, request: Request, who: Principal = Depends(_write),
                       session: AsyncSession = _session) -> dict[str, Any]:
    """Change the arms (checked as on create), pause (`active: false`) or resume a split."""
    row = await service.update(session, who, services(request).catalog, split_id, body)
    view = service.split_view(row)
    await _reload(request, session)
    return view


@router.delete("/splits/{split_id}", status_code=204)
async def delete_split(split_id: str, request: Request, who: Principal = Depends(_write), session: AsyncSession = _session) -> None:
    """End a split (its usage records keep their arm)."""
    await session.delete(await service.get(session, who, split_id))
    await _reload(request, session)


@router.get("/splits/{split_id}/report")
async def split_report(split_id: str, who: Principal = Depends(_read), session: AsyncSession = _session) -> dict[str, Any]:
    """Per arm: requests, succeeded, errors, refused, latency (avg / max ms), tokens, billed
    cost (micros) and feedback (count, average score)."""
    return await service.report(session, who, split_id)


@router.post("/feedback")
async def give_feedback(body: FeedbackCreate, who: Principal = Depends(require(Permission.USE_AI_BROKER)),
                        session: AsyncSession = _session) -> dict[str, Any]:
    """Score an answered request of the organization (`request_id` from `x-request-id`),
    -1 to 1. Another organization's request, or an unknown id, is a 404. A new score replaces the last."""
    return await service.give_feedback(session, who, body)

"""Prompt templates (seed 001's AiPromptTemplate): /api/ai/templates.

Reading, rendering and using a template needs USE_AI_BROKER; writing one needs MANAGE_KEYS
(OWNER, ADMIN and API keys: the roles that configure the organization's integration).
Public templates are the platform's: every organization reads and uses them, only the
platform (service key or SUPER_ADMIN) writes them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai import templates_service as service
from aibroker.ai.schemas import TemplateCreate, TemplateRender, TemplateUpdate
from aibroker.deps import db_session, require
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import Permission

router = APIRouter(prefix="/api/ai/templates", tags=["AI workspace: templates"])
MAX_OFFSET = 2**31 - 1

_use = require(Permission.USE_AI_BROKER)
_write = require(Permission.MANAGE_KEYS)
_session = Depends(db_session, scope="function")


@router.get("")
async def list_templates(
    category: str | None = Query(default=None, max_length=80, description="Only this category."),
    public: bool | None = Query(default=None, description="true: only public (platform) templates; false: only the organization's."),
    limit: int = Query(default=50, ge=1, le=200, description="Page size."),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET, description="Templates to skip."),
    who: Principal = Depends(_use), session: AsyncSession = _session,
) -> dict[str, Any]:
    """The organization's templates and the public ones, newest first."""
    rows = await service.list_templates(session, who, category=category, public=public, limit=limit, offset=offset)
    return {"object": "list", "data": [service.template_view(r) for r in rows], "total": await service.total(session, who, category=category, public=public)}


@router.post("", status_code=201)
async def create_template(body: TemplateCreate, who: Principal = Depends(_write), session: AsyncSession = _session) -> dict[str, Any]:
    """Create a template (version 1). A syntax error, or a construct the sandbox refuses
    (function calls, `_` attributes), is a 400 naming the line."""
    return service.template_view(await service.create_template(session, who, body))


@router.get("/{template_id}")
async def get_template(template_id: str, who: Principal = Depends(_use), session: AsyncSession = _session) -> dict[str, Any]:
    """One template (its current version)."""
    return service.template_view(await service.get_visible(session, who, template_id))


@router.put("/{template_id}")
async def update_template(template_id: str, body: TemplateUpdate, who: Principal = Depends(_write),
                          session: AsyncSession = _session) -> dict[str, Any]:
    """Change a template: a change makes a new version; earlier versions stay usable by number."""
    return service.template_view(await service.update_template(session, who, template_id, body))


@router.delete("/{template_id}", status_code=204)
async def delete_template(template_id: str, who: Principal = Depends(_write), session: AsyncSession = _session) -> None:
    """Delete a template and its versions."""
    await service.delete_template(session, who, template_id)


@router.get("/{template_id}/versions")
async def list_versions(template_id: str, who: Principal = Depends(_use), session: AsyncSession = _session) -> dict[str, Any]:
    """Every saved version, newest first."""
    rows = await service.versions(session, who, template_id)
    return {"object": "list", "data": [service.version_view(r) for r in rows]}


@router.post("/{template_id}/render")
async def render_template(template_id: str, body: TemplateRender, who: Principal = Depends(_use),
                          session: AsyncSession = _session) -> dict[str, Any]:
    """Dry run: the rendered text and its role, without calling a model (not counted as a use)."""
    return await service.render_template(session, who, template_id, body.version, body.variables)

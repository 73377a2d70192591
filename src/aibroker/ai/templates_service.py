"""Prompt templates: every query is scoped to the caller's organization plus the public
(platform) templates; another organization's template is a 404, whatever its id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai.schemas import TemplateCreate, TemplateUpdate
from aibroker.ai.scope import owner_of
from aibroker.ai.templates_engine import Variable, check_template, parse_variables, render
from aibroker.errors import NotFound, PermissionDenied
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import AiPromptTemplate, AiPromptTemplateVersion
from aibroker.tenancy.auth import Principal


def template_view(row: AiPromptTemplate) -> dict[str, Any]:
    return {
        "id": row.id, "object": "prompt_template", "name": row.name, "description": row.description,
        "category": row.category, "role": row.role, "prompt": row.prompt, "variables": row.variables,
        "public": row.is_public, "organization_id": row.organization_id, "owner": row.owner_id,
        "version": row.version, "usage_count": row.usage_count, "created_at": row.created_at, "updated_at": row.updated_at,
    }


def version_view(row: AiPromptTemplateVersion) -> dict[str, Any]:
    return {
        "template_id": row.template_id, "version": row.version, "name": row.name, "description": row.description,
        "category": row.category, "role": row.role, "prompt": row.prompt, "variables": row.variables,
        "author": row.author_id, "created_at": row.created_at,
    }


def _visible(principal: Principal) -> Any:
    return or_(AiPromptTemplate.organization_id == principal.organization_id, AiPromptTemplate.is_public.is_(True))


def _not_found(template_id: str) -> NotFound:
    return NotFound(f"No prompt template '{template_id}'.", param="id", code="template_not_found")


async def get_visible(session: AsyncSession, principal: Principal, template_id: str) -> AiPromptTemplate:
    row = await session.scalar(select(AiPromptTemplate).where(AiPromptTemplate.id == template_id, _visible(principal)))
    if row is None:
        raise _not_found(template_id)
    return row


async def get_writable(session: AsyncSession, principal: Principal, template_id: str) -> AiPromptTemplate:
    """The template, when the caller may change it: its organization's, or public for the platform."""
    row = await get_visible(session, principal, template_id)
    if row.is_public and not principal.is_platform_admin:
        raise PermissionDenied("Public templates belong to the platform; copy it into a template of your own.",
                               code="public_template_read_only")
    return row


def _filters(principal: Principal, category: str | None, public: bool | None) -> list[Any]:
    where = [_visible(principal)]
    if category is not None:
        where.append(AiPromptTemplate.category == category)
    if public is not None:
        where.append(AiPromptTemplate.is_public.is_(public))
    return where


async def list_templates(session: AsyncSession, principal: Principal, *, category: str | None, public: bool | None,
                         limit: int, offset: int) -> list[AiPromptTemplate]:
    query = select(AiPromptTemplate).where(*_filters(principal, category, public))
    query = query.order_by(AiPromptTemplate.created_at.desc(), AiPromptTemplate.id.desc()).limit(limit).offset(offset)
    return list((await session.scalars(query)).all())


def _checked(prompt: str, variables: Any) -> list[dict[str, Any]]:
    declared = parse_variables(variables) if variables is not None else None
    return [v.as_dict() for v in check_template(prompt, declared)]


def _snapshot(row: AiPromptTemplate, author: str) -> AiPromptTemplateVersion:
    return AiPromptTemplateVersion(
        id=new_id("tplv"), template_id=row.id, version=row.version, name=row.name, description=row.description,
        category=row.category, role=row.role, prompt=row.prompt, variables=row.variables, author_id=author,
    )


async def create_template(session: AsyncSession, principal: Principal, body: TemplateCreate) -> AiPromptTemplate:
    if body.public and not principal.is_platform_admin:
        raise PermissionDenied("Only the platform (its service key or a SUPER_ADMIN) publishes public templates.",
                               code="public_template_platform_only")
    variables = _checked(body.prompt, body.variables)
    owner = owner_of(principal)
    row = AiPromptTemplate(
        id=new_id("tpl"), organization_id=None if body.public else principal.organization_id, owner_id=owner,
        name=body.name, description=body.description, category=body.category, role=body.role, prompt=body.prompt,
        variables=variables, is_public=body.public, version=1, usage_count=0, created_at=utcnow(), updated_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    session.add(_snapshot(row, owner))
    return row


async def update_template(session: AsyncSession, principal: Principal, template_id: str, body: TemplateUpdate) -> AiPromptTemplate:
    """Apply the change; any change is a new version (the earlier ones stay readable and usable)."""
    row = await get_writable(session, principal, template_id)
    fields = body.model_fields_set
    prompt = body.prompt if "prompt" in fields and body.prompt is not None else row.prompt
    if "variables" in fields:
        variables = _checked(prompt, body.variables)
    elif "prompt" in fields:  # the text changed: its variables must still be declared
        variables = _checked(prompt, row.variables)
    else:
        variables = row.variables
    wanted: dict[str, Any] = {"prompt": prompt, "variables": variables}
    for name in ("name", "role", "description", "category"):
        value = getattr(body, name)
        if name in fields and (value is not None or name in ("description", "category")):
            wanted[name] = value
    changed = False
    for name, value in wanted.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    if changed:
        row.version += 1
        row.updated_at = utcnow()
        await session.flush()
        session.add(_snapshot(row, owner_of(principal)))
    return row


async def delete_template(session: AsyncSession, principal: Principal, template_id: str) -> None:
    row = await get_writable(session, principal, template_id)
    await session.delete(row)


async def versions(session: AsyncSession, principal: Principal, template_id: str) -> list[AiPromptTemplateVersion]:
    await get_visible(session, principal, template_id)
    query = select(AiPromptTemplateVersion).where(AiPromptTemplateVersion.template_id == template_id)
    return list((await session.scalars(query.order_by(AiPromptTemplateVersion.version.desc()))).all())


async def version_of(session: AsyncSession, principal: Principal, template_id: str, version: int | None) -> tuple[str, str, list[Variable], int]:
    """(role, text, variables, version) of the template's `version` (default: the current one)."""
    row = await get_visible(session, principal, template_id)
    if version is None or version == row.version:
        return row.role, row.prompt, parse_variables(row.variables), row.version
    saved = await session.scalar(select(AiPromptTemplateVersion).where(
        AiPromptTemplateVersion.template_id == template_id, AiPromptTemplateVersion.version == version))
    if saved is None:
        raise NotFound(f"The template '{template_id}' has no version {version} (current: {row.version}).",
                       param="template.version", code="template_version_not_found")
    return saved.role, saved.prompt, parse_variables(saved.variables), saved.version


async def render_template(session: AsyncSession, principal: Principal, template_id: str, version: int | None,
                          variables: Any) -> dict[str, Any]:
    role, prompt, declared, number = await version_of(session, principal, template_id, version)
    return {"template_id": template_id, "version": number, "role": role, "content": render(prompt, declared, variables)}


async def count_use(session: AsyncSession, template_id: str) -> None:
    """One more use, atomically (concurrent requests never lose a count)."""
    await session.execute(update(AiPromptTemplate).where(AiPromptTemplate.id == template_id)
                          .values(usage_count=AiPromptTemplate.usage_count + 1))


async def total(session: AsyncSession, principal: Principal, *, category: str | None, public: bool | None) -> int:
    """How many templates the same filters match (for paging)."""
    query = select(func.count()).select_from(AiPromptTemplate).where(*_filters(principal, category, public))
    return int(await session.scalar(query) or 0)

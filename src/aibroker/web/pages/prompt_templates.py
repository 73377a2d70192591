"""/console/playground/templates: the organization's prompt templates (and the platform's
public ones) through the templates service, as /api/ai/templates: the list with usage
counts, create and edit (each change is a new version), versions, and a render dry run.

Roles as in the API: every member reads, uses and dry-runs templates (USE_AI_BROKER);
creating, editing and deleting need MANAGE_KEYS (OWNER, ADMIN); public templates are the
platform's (SUPER_ADMIN)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aibroker.ai import templates_service as service
from aibroker.ai.schemas import TemplateCreate, TemplateUpdate
from aibroker.deps import db_session
from aibroker.errors import BrokerError, InvalidRequest
from aibroker.gateway.http import validate
from aibroker.tenancy.roles import Permission
from aibroker.web.auth import ConsoleUser, action, page
from aibroker.web.flash import flash
from aibroker.web.pages.ai_caller import principal_of
from aibroker.web.render import render

router = APIRouter()
BASE = "/console/playground/templates"
PAGE_SIZE = 50
FIELDS = ("name", "description", "category", "role", "prompt", "variables")
_session = Depends(db_session, scope="function")
_use_page = page(Permission.USE_AI_BROKER)
_use_action = action(Permission.USE_AI_BROKER)
_write_page = page(Permission.MANAGE_KEYS)
_write_action = action(Permission.MANAGE_KEYS)


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _json_field(raw: str, what: str) -> Any:
    """A JSON text field; empty is None. Not JSON: a 400 naming the field."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidRequest(f"{what} must be JSON, e.g. [\"name\"] or {{\"name\": \"Ana\"}}.", param=what.lower()) from None


def _body(form: Any) -> dict[str, Any]:
    """The form as the API's JSON body: empty optional fields are null."""
    return {
        "name": _text(form, "name"), "prompt": _text(form, "prompt"), "role": _text(form, "role") or "user",
        "description": _text(form, "description") or None, "category": _text(form, "category") or None,
        "variables": _json_field(_text(form, "variables"), "Variables"),
    }


def _may_write(user: ConsoleUser, row: dict[str, Any]) -> bool:
    return user.can(Permission.MANAGE_KEYS) and (not row["public"] or user.is_super_admin)


def _form_values(row: dict[str, Any] | None = None, given: Any = None) -> dict[str, str]:
    """What the form shows: what was typed (after a refusal), else the template's values."""
    if given is not None:
        return {name: _text(given, name) for name in FIELDS}
    if row is None:
        return {name: "" for name in FIELDS} | {"role": "user"}
    values = {name: row[name] or "" for name in FIELDS if name != "variables"}
    return values | {"variables": json.dumps(row["variables"], indent=1) if row["variables"] else ""}


@router.get(BASE)
async def list_templates(request: Request, user: ConsoleUser = Depends(_use_page), session: AsyncSession = _session) -> Response:
    """The templates: the organization's and the public ones, newest first, with their usage counts."""
    who = principal_of(user)
    try:
        offset = max(0, min(int(request.query_params.get("offset", "0")), 2**31 - 1))
    except ValueError:
        raise InvalidRequest("'offset' must be a whole number.", param="offset") from None
    rows = await service.list_templates(session, who, category=None, public=None, limit=PAGE_SIZE, offset=offset)
    total = await service.total(session, who, category=None, public=None)
    return render(request, "templates_list.html", title="Prompt templates", templates=[service.template_view(r) for r in rows],
                  total=total, offset=offset, page_size=PAGE_SIZE, can_write=user.can(Permission.MANAGE_KEYS))


@router.get(BASE + "/new")
async def new_template(request: Request, user: ConsoleUser = Depends(_write_page)) -> Response:
    """The form for a new template (MANAGE_KEYS)."""
    return render(request, "template_form.html", title="New template", values=_form_values(), error=None)


@router.post(BASE)
async def create_template(request: Request, user: ConsoleUser = Depends(_write_action), session: AsyncSession = _session) -> Response:
    """Create a template (version 1); a refused one shows the form again with the reason."""
    form = await request.form()
    try:
        body = validate(TemplateCreate, _body(form))
        row = await service.create_template(session, principal_of(user), body)
    except BrokerError as exc:
        if exc.status_code >= 500:
            raise
        return render(request, "template_form.html", status_code=exc.status_code, title="New template",
                      values=_form_values(given=form), error=exc.message)
    await session.commit()
    return flash(request, RedirectResponse(f"{BASE}/{row.id}", status_code=303), f"Template “{row.name}” created.")


async def _detail(request: Request, user: ConsoleUser, session: AsyncSession, template_id: str, *, status: int = 200,
                  error: str | None = None, given: Any = None, dry_run: dict[str, Any] | None = None,
                  dry_run_error: str | None = None, dry_run_values: str | None = None) -> Response:
    who = principal_of(user)
    row = service.template_view(await service.get_visible(session, who, template_id))
    versions = [service.version_view(v) for v in await service.versions(session, who, template_id)]
    skeleton = {v["name"]: v.get("default", "") for v in row["variables"]}
    return render(request, "template_detail.html", status_code=status, title=row["name"], item=row, versions=versions,
                  may_write=_may_write(user, row), values=_form_values(row, given), error=error, dry_run=dry_run,
                  dry_run_error=dry_run_error, dry_run_values=dry_run_values or json.dumps(skeleton, indent=1))


@router.get(BASE + "/{template_id}")
async def template_page(template_id: str, request: Request, user: ConsoleUser = Depends(_use_page),
                        session: AsyncSession = _session) -> Response:
    """One template: its text and variables, usage count, versions, the dry run and (for
    OWNER / ADMIN) the edit form. Another organization's: 404."""
    return await _detail(request, user, session, template_id[:60])


@router.post(BASE + "/{template_id}")
async def update_template(template_id: str, request: Request, user: ConsoleUser = Depends(_write_action),
                          session: AsyncSession = _session) -> Response:
    """Save the edit form: any change is a new version."""
    template_id = template_id[:60]
    form = await request.form()
    try:
        body = validate(TemplateUpdate, _body(form))
        row = await service.update_template(session, principal_of(user), template_id, body)
    except BrokerError as exc:
        if exc.status_code >= 500 or exc.status_code == 404:
            raise
        await session.rollback()
        return await _detail(request, user, session, template_id, status=exc.status_code, error=exc.message, given=form)
    await session.commit()
    return flash(request, RedirectResponse(f"{BASE}/{row.id}", status_code=303), f"Saved: version {row.version}.")


@router.post(BASE + "/{template_id}/render")
async def dry_run(template_id: str, request: Request, user: ConsoleUser = Depends(_use_action),
                  session: AsyncSession = _session) -> Response:
    """Render the template with the given variables (no model call, not counted as a use)."""
    template_id = template_id[:60]
    form = await request.form()
    raw = _text(form, "variables")
    try:
        variables = _json_field(raw, "Variables") or {}
        version = int(_text(form, "version")) if _text(form, "version").isdigit() else None
        result = await service.render_template(session, principal_of(user), template_id, version, variables)
    except BrokerError as exc:
        if exc.status_code >= 500 or exc.status_code == 404 and exc.code != "template_version_not_found":
            raise
        return await _detail(request, user, session, template_id, status=exc.status_code, dry_run_error=exc.message,
                             dry_run_values=raw)
    return await _detail(request, user, session, template_id, dry_run=result, dry_run_values=raw)


@router.post(BASE + "/{template_id}/delete")
async def delete_template(template_id: str, request: Request, user: ConsoleUser = Depends(_write_action),
                          session: AsyncSession = _session) -> Response:
    """Delete the template and its versions."""
    row = await service.get_writable(session, principal_of(user), template_id[:60])
    name = row.name
    await service.delete_template(session, principal_of(user), row.id)
    await session.commit()
    return flash(request, RedirectResponse(BASE, status_code=303), f"Template “{name}” deleted.")

"""/console/ai-config: seed 004's AIConfiguration (the tenant's AI context): system prompt,
business hours and away message, response style, temperature, max tokens, escalation rules,
model, lead scoring. Saved through messaging.context, as PUT /api/ai/context."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aibroker.deps import db_session
from aibroker.errors import BrokerError
from aibroker.messaging import context as ai_context
from aibroker.messaging.schemas import AIContextUpdate
from aibroker.tenancy.roles import Permission
from aibroker.web.auth import ConsoleUser, action, page
from aibroker.web.flash import flash
from aibroker.web.nav import NavEntry
from aibroker.web.render import render

router = APIRouter()
NAV = [NavEntry("AI configuration", "/console/ai-config", Permission.MANAGE_CHANNELS)]
STYLES = ("professional", "friendly", "casual", "concise")
DAY_NAMES = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday", "sat": "Saturday", "sun": "Sunday"}


class FormError(ValueError):
    """A field the person typed in a shape we cannot read (shown next to the form, 400)."""


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _ranges(day: str, text: str) -> list[list[str]]:
    """'09:00-13:00, 15:00-19:00' -> [["09:00", "13:00"], ["15:00", "19:00"]] (the service checks the times)."""
    ranges = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        start, sep, end = part.partition("-")
        if not sep:
            raise FormError(f"{DAY_NAMES[day]}: write ranges as 09:00-18:00, separated by commas.")
        ranges.append([start.strip(), end.strip()])
    return ranges


def _number(form: FormData, name: str, kind: type) -> Any:
    raw = _text(form, name)
    try:
        return kind(raw)
    except ValueError:
        raise FormError(f"{name.replace('_', ' ')} must be a number.") from None


def values_from(form: FormData) -> dict[str, Any]:
    """The PUT /api/ai/context body the form describes (validated by the API's model)."""
    hours = None
    if form.get("hours_enabled") == "on":
        schedule = {day: r for day in DAY_NAMES if (r := _ranges(day, _text(form, f"hours_{day}")))}
        hours = {"timezone": _text(form, "timezone") or "UTC", "schedule": schedule}
    style = _text(form, "response_style")
    if style == "other":
        style = _text(form, "response_style_other")
        if not style:
            raise FormError("Describe the other response style (or choose one of the list).")
    body = {
        "system_prompt": _text(form, "system_prompt"), "business_hours": hours, "away_message": _text(form, "away_message") or None,
        "response_style": style, "temperature": _number(form, "temperature", float), "max_tokens": _number(form, "max_tokens", int),
        "escalation_keywords": [k.strip() for k in _text(form, "escalation_keywords").split(",") if k.strip()],
        "auto_escalate_after_messages": _number(form, "auto_escalate_after_messages", int),
        "model": _text(form, "model") or None, "scoring_enabled": form.get("scoring_enabled") == "on",
    }
    model = AIContextUpdate.model_validate(body)
    values = model.model_dump(exclude_unset=True)
    if model.business_hours is not None:
        values["business_hours"] = model.business_hours.model_dump()
    return values


def _hours_text(context: ai_context.Context) -> dict[str, str]:
    schedule = (context.business_hours or {}).get("schedule") or {}
    return {day: ", ".join(f"{a}-{b}" for a, b in schedule.get(day) or []) for day in DAY_NAMES}


def _show(request: Request, context: ai_context.Context, *, status: int = 200, error: str | None = None,
          form: dict[str, Any] | None = None) -> Response:
    return render(request, "msg/ai_config.html", status_code=status, title="AI configuration", ctx=context, styles=STYLES,
                  days=DAY_NAMES, hours=_hours_text(context), error=error, typed=form or {})


@router.get("/console/ai-config")
async def ai_config_page(request: Request, user: ConsoleUser = Depends(page(Permission.MANAGE_CHANNELS)),
                         session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """The auto-responder's settings (defaults until saved once)."""
    return _show(request, await ai_context.load(session, user.organization_id))


@router.post("/console/ai-config")
async def save(request: Request, user: ConsoleUser = Depends(action(Permission.MANAGE_CHANNELS)),
               session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """Save every setting of the form (bad values: the form again with what is wrong, 400)."""
    form = await request.form()
    try:
        await ai_context.save(session, user.organization_id, values_from(form))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        error = f"{where.replace('_', ' ')}: {first.get('msg')}"
    except FormError as exc:
        error = str(exc)
    except BrokerError as exc:  # the service's own checks (time zone, ranges, empty prompt)
        if exc.status_code >= 500:
            raise
        error = exc.message
    else:
        return flash(request, RedirectResponse("/console/ai-config", status_code=303), "AI configuration saved.")
    typed = {k: v for k, v in form.items() if isinstance(v, str)}
    return _show(request, await ai_context.load(session, user.organization_id), status=400, error=error, form=typed)

"""The tenant's AI context: prompt, style, limits, escalation rules and business hours."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import InvalidRequest
from aibroker.kit.clock import utcnow
from aibroker.models import AIContext

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_PROMPT = (
    "You are the customer assistant of this business. Answer briefly, politely and in the customer's "
    "language. If you do not know something, say that a person from the team will follow up."
)
DEFAULT_ESCALATION_KEYWORDS = ["humano", "human", "agente", "agent", "asesor", "persona"]


@dataclass(slots=True)
class Context:
    """The effective settings (defaults when the tenant configured nothing)."""

    system_prompt: str = DEFAULT_PROMPT
    business_hours: dict[str, Any] | None = None
    away_message: str | None = None
    response_style: str = "professional"
    temperature: float = 0.7
    max_tokens: int = 500
    escalation_keywords: list[str] = field(default_factory=lambda: list(DEFAULT_ESCALATION_KEYWORDS))
    auto_escalate_after_messages: int = 5
    model: str | None = None
    scoring_enabled: bool = True
    configured: bool = False

    def view(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


FIELDS = tuple(f for f in Context.__slots__ if f != "configured")  # type: ignore[attr-defined]


async def load(session: AsyncSession, organization_id: str) -> Context:
    row = await session.get(AIContext, organization_id)
    if row is None:
        return Context()
    return Context(**{f: getattr(row, f) for f in FIELDS}, configured=True)


def check_business_hours(hours: dict[str, Any] | None) -> None:
    if hours is None:
        return
    try:
        ZoneInfo(str(hours.get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequest(f"Unknown time zone '{hours.get('timezone')}'.", param="business_hours.timezone") from exc
    schedule = hours.get("schedule") or {}
    if not isinstance(schedule, dict):
        raise InvalidRequest("business_hours.schedule must map days (mon..sun) to [[\"09:00\", \"18:00\"], ...].")
    for day, ranges in schedule.items():
        if day not in DAYS:
            raise InvalidRequest(f"Unknown day '{day}'; use {', '.join(DAYS)}.", param="business_hours.schedule")
        for pair in ranges or []:
            try:
                start, end = (dt.time.fromisoformat(x) for x in pair)
            except (TypeError, ValueError) as exc:
                raise InvalidRequest(f"'{day}': ranges are [\"HH:MM\", \"HH:MM\"].", param="business_hours.schedule") from exc
            if end <= start:
                raise InvalidRequest(f"'{day}': a range must end after it starts.", param="business_hours.schedule")


def is_open(hours: dict[str, Any] | None, at: dt.datetime | None = None) -> bool:
    """Inside the weekly schedule, in the tenant's time zone (no schedule: always open)."""
    if not hours:
        return True
    local = (at or utcnow()).astimezone(ZoneInfo(str(hours.get("timezone") or "UTC")))
    ranges = (hours.get("schedule") or {}).get(DAYS[local.weekday()]) or []
    now = local.time().replace(tzinfo=None)
    return any(dt.time.fromisoformat(a) <= now < dt.time.fromisoformat(b) for a, b in ranges)


async def save(session: AsyncSession, organization_id: str, values: dict[str, Any]) -> Context:
    check_business_hours(values.get("business_hours"))
    if values.get("system_prompt") is not None and not values["system_prompt"].strip():
        raise InvalidRequest("system_prompt must not be empty.", param="system_prompt")
    row = await session.get(AIContext, organization_id)
    if row is None:
        row = AIContext(organization_id=organization_id, **{f: getattr(Context(), f) for f in FIELDS})
        session.add(row)
    for key, value in values.items():
        if key in FIELDS:
            setattr(row, key, value)
    row.updated_at = utcnow()
    await session.flush()
    return Context(**{f: getattr(row, f) for f in FIELDS}, configured=True)

"""Alert settings per organization, the organization's alerts, and a scan on demand."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.ai.alert_scan import MAILED_TYPES, AlertScanner
from aibroker.deps import db_session, require_admin
from aibroker.gateway.http import authenticate, services
from aibroker.kit.clock import utcnow
from aibroker.kit.money import to_micros
from aibroker.models import AlertEmail, AlertSetting, Event
from aibroker.tenancy.roles import Permission

router = APIRouter(prefix="/api/ai/alerts", tags=["Alerts"])
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
MAX_MICROS = 10**15


class AlertSettingsView(BaseModel):
    organization_id: str
    enabled: bool = Field(description="Off: no alert of this organization is recorded or sent.")
    daily_spend_micros: int | None = Field(description="Alert when billed spend in one local day reaches this.")
    monthly_spend_micros: int | None = Field(description="Alert when billed spend in one local month reaches this "
                                             "(default: AI_COST_ALERT_THRESHOLD).")
    key_expiry_days: int = Field(description="Alert when an API key or provider key expires within this many days.")
    email_enabled: bool = Field(description="Also send each alert by e-mail (the signed webhook always gets it).")
    emails: list[str] = Field(description="Recipients; empty: the organization's owners and admins.")
    defaults: dict[str, Any] = Field(description="The platform defaults that apply where a value is not set.")


class AlertSettingsUpdate(BaseModel):
    """Fields left out stay as they are; null puts a threshold back to the platform default."""

    enabled: bool | None = None
    daily_spend_micros: int | None = Field(default=None, ge=1, le=MAX_MICROS)
    monthly_spend_micros: int | None = Field(default=None, ge=1, le=MAX_MICROS)
    key_expiry_days: int | None = Field(default=None, ge=0, le=365)
    email_enabled: bool | None = None
    emails: list[str] | None = Field(default=None, max_length=20)

    @field_validator("emails")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        cleaned = [v.strip().lower() for v in value]
        bad = [v for v in cleaned if len(v) > 320 or not _EMAIL.match(v)]
        if bad:
            raise ValueError(f"not an e-mail address: {bad[0][:80]}")
        return sorted(set(cleaned))


def _view(request: Request, org_id: str, row: AlertSetting | None) -> AlertSettingsView:
    s = services(request).settings.alerts
    default_monthly = to_micros(s.ai_cost_alert_threshold) if s.ai_cost_alert_threshold else None
    return AlertSettingsView(
        organization_id=org_id,
        enabled=row.enabled if row else True,
        daily_spend_micros=row.daily_spend_micros if row else None,
        monthly_spend_micros=row.monthly_spend_micros if row and row.monthly_spend_micros is not None else default_monthly,
        key_expiry_days=row.key_expiry_days if row and row.key_expiry_days is not None else s.alert_key_expiry_days,
        email_enabled=row.email_enabled if row else True,
        emails=list(row.emails) if row else [],
        defaults={"monthly_spend_micros": default_monthly, "key_expiry_days": s.alert_key_expiry_days},
    )


@router.get("/settings", response_model=AlertSettingsView)
async def get_alert_settings(request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> AlertSettingsView:
    """The caller's organization's alert thresholds and channels (platform defaults filled in)."""
    who = await authenticate(request, permission=Permission.VIEW_USAGE)
    return _view(request, who.organization_id, await session.get(AlertSetting, who.organization_id))


@router.put("/settings", response_model=AlertSettingsView)
async def update_alert_settings(
    body: AlertSettingsUpdate, request: Request, session: AsyncSession = Depends(db_session, scope="function")
) -> AlertSettingsView:
    """Change the organization's alert thresholds and channels (needs MANAGE_BILLING)."""
    who = await authenticate(request, permission=Permission.MANAGE_BILLING)
    row = await session.get(AlertSetting, who.organization_id)
    if row is None:
        row = AlertSetting(organization_id=who.organization_id, enabled=True, email_enabled=True, emails=[], created_at=utcnow())
        session.add(row)
    for name in body.model_fields_set:
        value = getattr(body, name)
        if name in ("enabled", "email_enabled") and value is None:
            continue  # a switch has no default to go back to
        setattr(row, name, value if value is not None or name != "emails" else [])
    row.updated_at = utcnow()
    await session.flush()
    return _view(request, who.organization_id, row)


@router.get("")
async def list_alerts(
    request: Request, limit: int = Query(50, ge=1, le=500),
    session: AsyncSession = Depends(db_session, scope="function"),
) -> dict[str, Any]:
    """The organization's alerts (spend, key expiry, low balance, quota), newest first, with
    their e-mail's status (pending, sent, skipped, failed; null: not mailed)."""
    who = await authenticate(request, permission=Permission.VIEW_USAGE)
    rows = (await session.execute(
        select(Event, AlertEmail.status).outerjoin(AlertEmail, AlertEmail.event_id == Event.id)
        .where(Event.organization_id == who.organization_id,
               or_(Event.type.like("alert.%"), Event.type.in_(MAILED_TYPES)))
        .order_by(Event.created_at.desc(), Event.id).limit(limit)
    )).all()
    return {"object": "list", "data": [
        {"id": e.id, "type": e.type, "data": e.payload, "created_at": _iso(e.created_at),
         "webhook_delivered_at": _iso(e.delivered_at), "email": status} for e, status in rows
    ]}


@router.post("/scan", dependencies=[Depends(require_admin)])
async def scan_alerts(request: Request) -> dict[str, Any]:
    """Platform admin: run the alert checks now (they also run every AIBROKER_ALERT_SCAN_SECONDS)."""
    result = await AlertScanner(services(request)).scan()
    return {"alerts": result.alerts, "emails_queued": result.emails_queued}


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()

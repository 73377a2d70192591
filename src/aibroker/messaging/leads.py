"""Leads: who wrote to a tenant, and how likely they are to buy (seed 004's scoring)."""

from __future__ import annotations

from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import NotFound
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Lead, LeadScoreEvent

INITIAL_SCORE = 50
SIGNALS: dict[str, int] = {
    "interested": 10,
    "urgent": 15,
    "budget_mentioned": 20,
    "decision_maker": 15,
    "comparing": 5,
    "not_interested": -20,
    "spam": -50,
}


def classification(score: int) -> str:
    return "HOT" if score >= 70 else "WARM" if score >= 40 else "COLD"


def normalize_phone(raw: str | None) -> str | None:
    """E.164 (+5491155550000). WhatsApp sends international digits without '+'."""
    if not raw:
        return None
    text = raw.strip()
    try:
        number = phonenumbers.parse(text if text.startswith("+") else "+" + text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def identity(channel: str, data: dict[str, Any]) -> tuple[str, str | None]:
    """(external user id, phone): E.164 phone on WhatsApp (a BSUID when no phone), else the PSID / open id."""
    if channel == "whatsapp":
        phone = normalize_phone(data.get("phone") or data.get("user_id"))
        return (phone or str(data.get("user_id"))), phone
    return str(data.get("user_id")), None


async def find_or_create(
    session: AsyncSession, *, organization_id: str, channel: str, data: dict[str, Any], branch: str | None
) -> Lead:
    external_id, phone = identity(channel, data)
    lead = await session.scalar(
        select(Lead).where(Lead.organization_id == organization_id, Lead.channel == channel, Lead.external_user_id == external_id)
    )
    if lead is None:
        lead = Lead(
            id=new_id("lead"), organization_id=organization_id, branch=branch, channel=channel,
            external_user_id=external_id, phone=phone, name=data.get("name"), score=INITIAL_SCORE,
            classification=classification(INITIAL_SCORE), updated_at=utcnow(),
        )
        lead.is_new = True
        session.add(lead)
        await session.flush()
    elif data.get("name") and not lead.name:
        lead.name = data["name"]
    return lead


async def apply_signals(
    session: AsyncSession, lead: Lead, signals: list[str], *, message_id: str | None, details: dict[str, Any] | None = None
) -> list[LeadScoreEvent]:
    """Add each known signal once, clamped to 0-100, recording every change with its reason."""
    events = []
    for signal in dict.fromkeys(s for s in signals if s in SIGNALS):
        delta = SIGNALS[signal]
        before = lead.score
        after = max(0, min(100, before + delta))
        lead.score, lead.classification = after, classification(after)
        event = LeadScoreEvent(
            id=new_id("lse"), organization_id=lead.organization_id, lead_id=lead.id, message_id=message_id,
            signal=signal, delta=after - before, score_before=before, score_after=after,
            classification_after=lead.classification,
            reason=f"message classified as '{signal}' ({delta:+d})" + (" (clamped)" if after - before != delta else ""),
            details=details or {},
        )
        session.add(event)
        events.append(event)
    if events:
        lead.updated_at = utcnow()
        await session.flush()
    return events


def lead_view(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id, "channel": lead.channel, "external_user_id": lead.external_user_id, "phone": lead.phone,
        "name": lead.name, "profile_picture_url": lead.profile_picture_url, "score": lead.score, "classification": lead.classification, "branch": lead.branch,
        "last_inbound_at": lead.last_inbound_at, "created_at": lead.created_at,
    }


async def list_scoped(
    session: AsyncSession, organization_id: str, *, classification: str | None = None, channel: str | None = None,
    limit: int = 50, offset: int = 0,
) -> list[Lead]:
    """The organization's leads, highest score first."""
    stmt = select(Lead).where(Lead.organization_id == organization_id)
    if classification:
        stmt = stmt.where(Lead.classification == classification.upper())
    if channel:
        stmt = stmt.where(Lead.channel == channel)
    return list(await session.scalars(stmt.order_by(Lead.score.desc(), Lead.created_at.desc()).limit(limit).offset(offset)))


async def get_scoped(session: AsyncSession, organization_id: str, lead_id: str) -> Lead:
    lead = await session.scalar(select(Lead).where(Lead.id == lead_id, Lead.organization_id == organization_id))
    if lead is None:
        raise NotFound(f"No lead '{lead_id}'.", param="id")
    return lead


async def score_history(session: AsyncSession, lead_id: str) -> list[dict[str, Any]]:
    """Every change of the lead's score, oldest first, with its reason."""
    events = await session.scalars(select(LeadScoreEvent).where(LeadScoreEvent.lead_id == lead_id).order_by(LeadScoreEvent.created_at))
    return [
        {"signal": e.signal, "delta": e.delta, "score_before": e.score_before, "score_after": e.score_after,
         "classification": e.classification_after, "reason": e.reason, "message_id": e.message_id, "created_at": e.created_at}
        for e in events
    ]

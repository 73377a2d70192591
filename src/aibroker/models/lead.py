from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class Lead(Timestamped, Base):
    """A person who wrote to a tenant on one channel (E.164 phone, PSID/IGSID or TikTok open id)."""

    __tablename__ = "leads"
    __table_args__ = (UniqueConstraint("organization_id", "channel", "external_user_id", name="uq_leads_identity"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    branch: Mapped[str | None] = mapped_column(String(80), nullable=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_user_id: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    score: Mapped[int] = mapped_column(Integer, default=50)
    classification: Mapped[str] = mapped_column(String(10), default="WARM")  # HOT | WARM | COLD
    last_inbound_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Enrichment from the platform's profile API (messaging.enrich): best effort, once.
    profile_picture_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    profile_fetched_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Not a column: true on the instance `messaging.leads.find_or_create` has just created.
    is_new = False


class LeadScoreEvent(Timestamped, Base):
    """One change of a lead's score, with the signal and message that caused it."""

    __tablename__ = "lead_score_events"
    __table_args__ = (Index("ix_lead_score_events_lead", "lead_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(40))
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    message_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    signal: Mapped[str] = mapped_column(String(40))
    delta: Mapped[int] = mapped_column(Integer)
    score_before: Mapped[int] = mapped_column(Integer)
    score_after: Mapped[int] = mapped_column(Integer)
    classification_after: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

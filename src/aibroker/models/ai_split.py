"""A/B splits of a feature's traffic across models, and feedback on answered requests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class AiSplit(Timestamped, Base):
    """An organization's split of one feature: arms `[{"name", "model", "weight"}]`, weights summing to 100."""

    __tablename__ = "ai_splits"
    __table_args__ = (UniqueConstraint("organization_id", "feature", name="split_org_feature"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    feature: Mapped[str] = mapped_column(String(80))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    arms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AiFeedback(Timestamped, Base):
    """A score sent for one request of the organization (the latest one counts)."""

    __tablename__ = "ai_feedback"
    __table_args__ = (UniqueConstraint("organization_id", "request_id", name="feedback_org_request"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(60))
    score: Mapped[float] = mapped_column(Float)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    author_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

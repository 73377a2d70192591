from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class Event(Timestamped, Base):
    """Something a tenant or operator should hear about (low balance, quota, escalation ...)."""

    __tablename__ = "events"
    # The deliverer's queue: only undelivered events are indexed.
    __table_args__ = (
        Index(
            "ix_events_undelivered",
            "next_attempt_at",
            postgresql_where=text("delivered_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)
    type: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When the deliverer may (re)try: a claim lease while in flight, then the retry backoff.
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # What only the webhook may see (an invitation's accept link): a JSON object sealed with
    # AES-256-GCM, merged into the delivered `data`, never listed, dropped once delivered.
    sealed_payload: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)  # which secret sealed it

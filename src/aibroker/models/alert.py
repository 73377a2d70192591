"""Per-organization alert settings, and the e-mail sent (or to be sent) for each alert event."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class AlertSetting(Timestamped, Base):
    """An organization's alert thresholds and channels. No row: the platform defaults."""

    __tablename__ = "alert_settings"

    organization_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Spend thresholds (billed micros) per local day / month; None: the platform default.
    daily_spend_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    monthly_spend_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    key_expiry_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AlertEmail(Timestamped, Base):
    """The e-mail of one event: written once (the event id is the key), sent by a job that
    retries while the SMTP server is unreachable."""

    __tablename__ = "alert_emails"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | sent | skipped
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

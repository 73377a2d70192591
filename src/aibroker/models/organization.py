from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, Integer, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class Organization(Timestamped, Base):
    """A tenant. Everything a customer owns hangs off its id."""

    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    plan: Mapped[str] = mapped_column(String(40), default="free")
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Overrides the plan's / platform's margin when set (basis points: 3000 = 30%).
    margin_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Response cache opt-out for the whole organization (limits/cache issue).
    cache_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Whether `x-organization-code` header authentication is accepted (accounts issue).
    allow_code_auth: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

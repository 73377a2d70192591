from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class PlanRow(Timestamped, Base):
    """A subscription plan: what an organization on it may do. NULL limits mean "no limit"."""

    __tablename__ = "plans"

    slug: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    price_micros: Mapped[int] = mapped_column(BigInteger, default=0)  # per month
    # Seed 002: account limits.
    max_users: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_recordings: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_storage_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Rate limits for the whole organization, and for each of its users.
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    requests_per_hour: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_requests_per_hour: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_tokens_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Quotas per calendar period (UTC).
    monthly_token_quota: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    daily_token_quota: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    monthly_request_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    daily_request_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # None: every model. Otherwise catalog ids ("openai/gpt-4o-mini") or names ("gpt-4o-mini").
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    margin_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: platform default
    max_prompt_chars: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_messages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Off what batch lines (/v1/batches) are charged, in basis points; None: no discount.
    batch_discount_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

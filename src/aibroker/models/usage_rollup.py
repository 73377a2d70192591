"""Hourly rollups of usage records, written in the same transaction as the records."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.ai.rollup_shape import HIST_COLUMNS
from aibroker.models.base import Base


class UsageRollup(Base):
    """One hour of the organization's time zone x model x provider x feature x user x API key.
    Empty strings stand for "none" (a NULL would never conflict, so never merge)."""

    __tablename__ = "usage_rollups"
    __table_args__ = (
        Index("ix_usage_rollups_bucket", "bucket_start"),
        Index("ix_usage_rollups_org_date", "organization_id", "local_date"),
    )

    organization_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    bucket_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    provider: Mapped[str] = mapped_column(String(60), primary_key=True)
    feature: Mapped[str] = mapped_column(String(80), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    api_key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    local_date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the organization's zone
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_attempts: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_hits: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_hit_input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_hit_output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_hit_billed_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    provider_cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    billed_cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_count: Mapped[int] = mapped_column(BigInteger, default=0)


for _name in HIST_COLUMNS:  # the latency histogram (ai/rollup_shape.py): one count per bin
    setattr(UsageRollup, _name, mapped_column(_name, Integer, default=0, nullable=False))

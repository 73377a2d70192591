"""The analytics rollups (ai/rollup_cubes.py): four cubes of the usage records, written in the
same transaction as the records. Empty strings stand for "none" (a NULL would never conflict,
so never merge). `shard` keeps concurrent writer processes off each other's rows (reads sum
over it), so the rollups add no lock contention between gateway processes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.ai.rollup_shape import HIST_COLUMNS
from aibroker.models.base import Base


class _Money:
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_hits: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_saved_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    provider_cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    billed_cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)


class _Measures(_Money):
    failed_attempts: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_count: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageRollup(_Measures, Base):
    """A tenant's hour (of its time zone) x model x provider x feature: totals, time series and
    the model / provider / feature breakdowns of one organization."""

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
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    local_date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the organization's zone


class UsageRollupUser(_Measures, Base):
    """A tenant's local day x end user x API key: the user and key breakdowns and top users."""

    __tablename__ = "usage_rollups_users"

    organization_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    local_date: Mapped[str] = mapped_column(String(10), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    api_key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)


class UsageRollupPlatform(_Measures, Base):
    """All organizations' UTC hour x provider x model x feature: the platform's totals, series
    and breakdowns without reading a row per organization."""

    __tablename__ = "usage_rollups_platform"

    bucket_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    provider: Mapped[str] = mapped_column(String(60), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    feature: Mapped[str] = mapped_column(String(80), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD (UTC)


class UsageRollupOrg(_Money, Base):
    """An organization's UTC day: the platform's revenue, cost and margin per organization."""

    __tablename__ = "usage_rollups_orgs"
    __table_args__ = (Index("ix_usage_rollups_orgs_day", "day"),)

    organization_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD (UTC)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)


for _cube in (UsageRollup, UsageRollupUser, UsageRollupPlatform):  # the latency histogram (ai/rollup_shape.py)
    for _name in HIST_COLUMNS:
        setattr(_cube, _name, mapped_column(_name, Integer, default=0, nullable=False))

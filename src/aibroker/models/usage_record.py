from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class UsageRecord(Timestamped, Base):
    """One upstream attempt or one answered request: what was asked, what it cost, how it went."""

    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_org_created", "organization_id", "created_at"),
        Index("ix_usage_records_request", "request_id"),
        # The routing matrix counts a feature's requests per day / month (migration 0005).
        Index("ix_usage_records_org_feature_created", "organization_id", "feature", "created_at"),
        # A batch's lines (migration 0017): each line's records point at its batch and custom_id.
        Index("ix_usage_records_batch", "batch_id", "batch_custom_id"),
        # A/B split reports (migration 0020). Partial: requests outside a split never write it.
        Index("ix_usage_records_ab_split", "ab_split_id", "ab_arm",
              postgresql_where=text("ab_split_id IS NOT NULL"), sqlite_where=text("ab_split_id IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(40))
    organization_id: Mapped[str] = mapped_column(String(40))
    api_key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    user_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    feature: Mapped[str | None] = mapped_column(String(80), nullable=True)
    endpoint: Mapped[str] = mapped_column(String(40))  # chat | embeddings | broker
    provider: Mapped[str] = mapped_column(String(60))
    model: Mapped[str] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    provider_cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    billed_cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    margin_bps: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    upstream_latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20))  # success | error | partial
    error_type: Mapped[str | None] = mapped_column(String(80), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    streamed: Mapped[bool] = mapped_column(Boolean, default=False)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    # A cache hit: what the answer would have been billed fresh, minus what it was (migration 0025).
    cache_saved_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    byok: Mapped[bool] = mapped_column(Boolean, default=False)
    batch_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    batch_custom_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    ab_split_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the A/B split that chose the model
    ab_arm: Mapped[str | None] = mapped_column(String(80), nullable=True)  # ... and the arm this request fell in
    # What the guardrails decided (issue 15), e.g. "flagged:input:violence", "blocked:output:hate",
    # "redacted:output"; NULL when no guardrail acted.
    guardrail: Mapped[str | None] = mapped_column(String(120), nullable=True)

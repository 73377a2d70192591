from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class ChannelConnection(Timestamped, Base):
    """A tenant's WhatsApp number, Facebook page, Instagram account or TikTok business account.

    `account_key` is the id the platform puts in webhooks (phone number id, page id, IG account
    id, TikTok business open id): it routes shared-endpoint events to the tenant.
    Tokens and the signing secret are sealed (AES-256-GCM, bound to this row). An account id
    (account_key; the page id, which Instagram connections also carry) belongs to one
    connection across all tenants.
    """

    __tablename__ = "channel_connections"
    __table_args__ = (
        UniqueConstraint("channel", "account_key", name="uq_channel_connections_account"),
        Index("uq_channel_connections_page", "channel", "page_id", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    branch: Mapped[str | None] = mapped_column(String(80), nullable=True)
    channel: Mapped[str] = mapped_column(String(20))  # whatsapp | instagram | facebook | tiktok
    status: Mapped[str] = mapped_column(String(20), default="active")
    ai_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    account_key: Mapped[str] = mapped_column(String(120))
    phone_number_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    business_account_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    page_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    instagram_account_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tiktok_client_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tiktok_business_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    sealed_credentials: Mapped[bytes] = mapped_column(LargeBinary)
    # None: no own app secret; webhooks verify with the platform's (META_APP_SECRET, TIKTOK_CLIENT_SECRET).
    sealed_app_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    key_id: Mapped[str] = mapped_column(String(16))
    # sha256 of the verify token: compared on GET verification, never stored in clear.
    verify_token_hash: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebhookEvent(Timestamped, Base):
    """The webhook inbox: every inbound event once, keyed by the platform's id for it."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_webhook_events_channel_external"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(255))
    organization_id: Mapped[str] = mapped_column(String(40), index=True)
    connection_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))  # message | status
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    processed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AIContext(Timestamped, Base):
    """How a tenant's auto-responder behaves (seed 004's ai_tenant_context)."""

    __tablename__ = "ai_contexts"

    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    system_prompt: Mapped[str] = mapped_column(Text)
    # {"timezone": "America/Mexico_City", "schedule": {"mon": [["09:00", "18:00"]], ...}}; null: always open
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    away_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_style: Mapped[str] = mapped_column(String(50), default="professional")
    temperature: Mapped[float] = mapped_column(Float, default=0.7)
    max_tokens: Mapped[int] = mapped_column(Integer, default=500)
    escalation_keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    auto_escalate_after_messages: Mapped[int] = mapped_column(Integer, default=5)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    scoring_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

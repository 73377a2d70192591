from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class Conversation(Timestamped, Base):
    """A thread between a tenant and a lead on one channel, handled by the AI or a human."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_lead", "organization_id", "lead_id", "channel", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    branch: Mapped[str | None] = mapped_column(String(80), nullable=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    connection_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | pending | resolved | closed
    handled_by: Mapped[str] = mapped_column(String(10), default="ai")  # ai | human
    # TikTok replies go to a conversation id, not to the user.
    external_thread_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ai_messages_since_handoff: Mapped[int] = mapped_column(Integer, default=0)
    last_inbound_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_message_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    away_sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    escalation_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Message(Timestamped, Base):
    """One message in a conversation. Outbound status only moves forward:
    queued -> sending -> sent -> delivered -> read (failed / blocked end it early)."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation", "conversation_id", "created_at"),
        Index("ix_messages_external", "channel", "external_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(40), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))  # inbound | outbound
    author: Mapped[str] = mapped_column(String(10))  # lead | ai | human | system
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # received | queued | sent | delivered | read | failed | blocked
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the gateway request of an AI reply
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

"""AI conversations (seed 001's AiConversation): a user's chat with a model, turn by turn."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class AiConversation(Timestamped, Base):
    """One conversation, owned by one user (or API key) of one organization."""

    __tablename__ = "ai_conversations"
    __table_args__ = (Index("ix_ai_conversations_org_owner_updated", "organization_id", "owner_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(String(120))
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)  # None: the router chooses
    system_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AiConversationMessage(Timestamped, Base):
    """One turn; an assistant turn carries what it cost and the request that produced it."""

    __tablename__ = "ai_conversation_messages"
    __table_args__ = (Index("ix_ai_conversation_messages_conv_seq", "conversation_id", "seq", unique=True),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("ai_conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(20))  # user | assistant
    content: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)

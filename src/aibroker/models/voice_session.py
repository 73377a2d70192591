"""A realtime voice session (voice/): opened by init, served over one WebSocket."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class VoiceSession(Timestamped, Base):
    """The session's id is the caller's `sessionId` (unique per organization). Its usage
    records carry that id as their `request_id`. `token_hash` is the SHA-256 of the
    short-lived session token (the token itself is never stored). A session whose
    `heartbeat_at` is older than the lease TTL while `status` is active lost its process."""

    __tablename__ = "voice_sessions"
    __table_args__ = (
        Index("ix_voice_sessions_org_status", "organization_id", "status"),
        Index("ix_voice_sessions_org_created", "organization_id", "created_at"),
        Index("ix_voice_sessions_token_hash", "token_hash", unique=True),
    )

    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    api_key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    model: Mapped[str] = mapped_column(String(200))  # catalog id, provider/model
    feature: Mapped[str | None] = mapped_column(String(80), nullable=True)
    voice: Mapped[str | None] = mapped_column(String(64), nullable=True)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    instructions: Mapped[str | None] = mapped_column(Text, nullable=True)
    tools: Mapped[list[Any]] = mapped_column(JSON, default=list)
    input_audio_format: Mapped[str] = mapped_column(String(20), default="pcm16")
    output_audio_format: Mapped[str] = mapped_column(String(20), default="pcm16")
    # pending (initialized, not connected) | active | closed | failed | expired (token unused)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    duration_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    responses: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    input_audio_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_audio_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    close_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    close_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    transcript: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"role", "text"}]

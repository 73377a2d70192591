"""Recordings (seed 002): the uploaded audio, its chunks while uploading, its transcription
segments (one billed AI call each) and its analysis; and each organization's storage use."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class Recording(Timestamped, Base):
    """status: uploading -> uploaded -> processing -> analyzed, or failed (failure_code says why)."""

    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_org_created", "organization_id", "created_at", "id"),
        Index("ix_recordings_org_status", "organization_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(40), ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(20), default="uploading")
    failure_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    failure_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(120), nullable=True)  # as the client declared it
    media_type: Mapped[str | None] = mapped_column(String(60), nullable=True)  # as probed: audio/mpeg ...
    codec: Mapped[str | None] = mapped_column(String(40), nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expected_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expected_chunks: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expected_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    storage_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # what it counts against the quota
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    segments_total: Mapped[int] = mapped_column(Integer, default=0)
    segments_done: Mapped[int] = mapped_column(Integer, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    uploaded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    processed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RecordingChunk(Timestamped, Base):
    """One uploaded chunk; gone once the recording is assembled."""

    __tablename__ = "recording_chunks"

    recording_id: Mapped[str] = mapped_column(String(40), ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))


class RecordingSegment(Timestamped, Base):
    """One piece of the audio, transcribed by one billed call. status: started (request_id
    names the call) -> done; a resumed job skips done segments."""

    __tablename__ = "recording_segments"

    recording_id: Mapped[str] = mapped_column(String(40), ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(40))
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="started")
    request_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    language: Mapped[str | None] = mapped_column(String(40), nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RecordingAnalysis(Timestamped, Base):
    __tablename__ = "recording_analyses"

    recording_id: Mapped[str] = mapped_column(String(40), ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(40), index=True)
    transcript: Mapped[str] = mapped_column(Text, default="")
    segments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    language: Mapped[str | None] = mapped_column(String(40), nullable=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    sentiment: Mapped[str] = mapped_column(String(20), default="neutral")
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    action_items: Mapped[list[str]] = mapped_column(JSON, default=list)
    models: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    request_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class StorageUsage(Base):
    """Exact per-organization use: bytes stored (chunks and assembled recordings) and how many
    recordings exist. Changed by conditional UPDATEs, so two uploads cannot pass a limit together."""

    __tablename__ = "storage_usage"

    organization_id: Mapped[str] = mapped_column(String(40), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    recordings: Mapped[int] = mapped_column(Integer, default=0)

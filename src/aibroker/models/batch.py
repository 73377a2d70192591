"""Uploaded files (`/v1/files`) and batches (`/v1/batches`), OpenAI's Batch API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class StoredFile(Timestamped, Base):
    """A file of an organization: its bytes live in blob storage under `storage_key`."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_organization_id_id", "organization_id", "id"),)

    id: Mapped[str] = mapped_column(String(60), primary_key=True)  # file-...
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(40))  # batch | batch_output | user_data | ...
    filename: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    line_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Batch(Timestamped, Base):
    """One batch: its input file, lifecycle timestamps and result files. The lines' results
    are rows of batch_lines (request_counts are counted from them)."""

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_organization_id_id", "organization_id", "id"),)

    id: Mapped[str] = mapped_column(String(60), primary_key=True)  # batch_...
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(40))
    input_file_id: Mapped[str] = mapped_column(String(60))
    completion_window: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    output_file_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    error_file_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    errors: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    # Who created it (API key, user, routing authority): every line runs as that caller.
    creator: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    in_progress_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finalizing_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancelling_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class BatchLine(Timestamped, Base):
    """The outcome of one input line, written once: a billed success in the same transaction
    as its debit and usage record (so a resumed batch never runs it again), a failure or a
    never-run line (expired, cancelled) on its own."""

    __tablename__ = "batch_lines"
    __table_args__ = (UniqueConstraint("batch_id", "line_index", name="uq_batch_lines_batch_id_line_index"),)

    id: Mapped[str] = mapped_column(String(60), primary_key=True)  # batch_req_...
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    line_index: Mapped[int] = mapped_column(Integer)
    custom_id: Mapped[str] = mapped_column(String(512))
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: never run
    request_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    usage_record_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)

"""A stored `/v1/responses` response (OpenAI's Responses API, `store: true`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class StoredResponse(Timestamped, Base):
    """What `GET /v1/responses/{id}`, `input_items`, `previous_response_id` and
    `item_reference` read back. `body` is the Response object as answered; the input and
    output items (with their ids) are kept apart so a chain can be replayed cheaply.
    Rows past `expires_at` are purged (AIBROKER_RESPONSES_RETENTION_DAYS)."""

    __tablename__ = "responses"
    __table_args__ = (
        Index("ix_responses_organization_id_id", "organization_id", "id"),
        Index("ix_responses_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(60), primary_key=True)  # resp_...
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # completed | incomplete | failed
    input_items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    output_items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    request_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    previous_response_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class ProviderCredential(Timestamped, Base):
    """An organization's own provider key (BYOK), sealed with AES-256-GCM."""

    __tablename__ = "provider_credentials"
    __table_args__ = (UniqueConstraint("organization_id", "provider", name="org_provider"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(60))
    sealed_key: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(16))  # which secret key sealed it (rotation)
    display_hint: Mapped[str] = mapped_column(String(16))  # last 4 characters only
    # Lifecycle (seed 001's AiApiKey): when it was last used (coalesced writes), when it stops
    # being used, and a monthly limit on the provider cost it may run up (micro-units; NULL:
    # none) with what it ran up in `usage_month` (UTC, "YYYY-MM") so far.
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    monthly_limit_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    usage_month: Mapped[str | None] = mapped_column(String(7), nullable=True)
    usage_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

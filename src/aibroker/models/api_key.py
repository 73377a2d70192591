from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class ApiKey(Timestamped, Base):
    """A tenant API key. Only its SHA-256 is stored; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120), default="default")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # First characters of the key, safe to show so a user can tell keys apart.
    display_prefix: Mapped[str] = mapped_column(String(16))
    # Filled by the accounts issue: the user a key was made for (no FK yet: users arrive later).
    user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    default_feature: Mapped[str | None] = mapped_column(String(80), nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Tighter limits for this key alone (NULL: only the organization's plan applies).
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rph: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    monthly_token_quota: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    daily_token_quota: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    monthly_request_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    daily_request_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Routing authority, granted by the platform (issue 18): the profile this key's requests
    # run with (NULL: "default"), and the profiles / groups its requests may name themselves.
    profile: Mapped[str | None] = mapped_column(String(40), nullable=True)
    allowed_profiles: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    allowed_groups: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # Guardrails (issue 15): the networks a key may be used from (CIDR strings; NULL: anywhere),
    # its request-signing secret (sealed; NULL: unsigned requests accepted) and replay window.
    allowed_ips: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    sealed_signing_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    signing_key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    signing_window_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Written coalesced (tenancy.last_used): accurate to the flush interval, not per request.
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    @property
    def key_id(self) -> str | None:
        """Which secret key sealed the signing secret (the name `aibroker secrets rotate` reads)."""
        return self.signing_key_id

"""Per-organization guardrails, the platform's own provider keys, provider activity and the
nonces of signed requests (issue 15)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class GuardrailSettings(Base):
    """One organization's guardrails: PII redaction of answers, moderation of prompts and answers."""

    __tablename__ = "guardrail_settings"

    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    redact_input_pii: Mapped[bool] = mapped_column(Boolean, default=False)
    redact_output_pii: Mapped[bool] = mapped_column(Boolean, default=False)
    moderate_input: Mapped[bool] = mapped_column(Boolean, default=False)
    moderate_output: Mapped[bool] = mapped_column(Boolean, default=False)
    action: Mapped[str] = mapped_column(String(10), default="block")  # block | redact | flag
    moderation_model: Mapped[str | None] = mapped_column(String(200), nullable=True)  # NULL: rules only
    rules: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # words or /regex/
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PlatformProviderKey(Timestamped, Base):
    """The platform's key for a provider, sealed; preferred to the environment variable."""

    __tablename__ = "platform_provider_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(60), unique=True)
    sealed_key: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(16))
    display_hint: Mapped[str] = mapped_column(String(16))
    rotated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ProviderActivity(Base):
    """When each provider last served a request (seed 000: "Actualizar último uso del proveedor")."""

    __tablename__ = "provider_activity"

    provider: Mapped[str] = mapped_column(String(60), primary_key=True)
    last_used_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class SignedRequestNonce(Base):
    """A request signature seen within its replay window: the same one again is a replay."""

    __tablename__ = "signed_request_nonces"

    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)

from __future__ import annotations

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
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

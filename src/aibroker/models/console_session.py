"""Console sign-ins: a browser's session, revocable on the server (the cookie holds a random token)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class ConsoleSession(Timestamped, Base):
    """One signed-in browser. Only the SHA-256 of the cookie's token is stored; logout sets
    `revoked_at`, so a copied cookie stops working at once."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The organization the user is looking at (the switcher changes it); None until chosen.
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id", ondelete="SET NULL"), nullable=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, BigIntPK, Timestamped


class Wallet(Timestamped, Base):
    """A prepaid balance. balance == sum(ledger); held == sum(open holds)."""

    __tablename__ = "wallets"
    __table_args__ = (CheckConstraint("held_micros >= 0", name="held_not_negative"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    balance_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    held_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    low_balance_threshold_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    # Set when the low-balance alert fired; cleared when a recharge lifts the balance above it.
    low_balance_alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WalletHold(Timestamped, Base):
    """Money reserved for one in-flight request. Deleted when the request settles."""

    __tablename__ = "wallet_holds"
    __table_args__ = (Index("ix_wallet_holds_expires", "expires_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[str] = mapped_column(String(40))
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class LedgerEntry(Timestamped, Base):
    """One movement of money. Never updated, never deleted."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_wallet_id_id", "wallet_id", "id"),
        # Payments find their recharge by reference (refunds, disputes). Partial: debits carry
        # no reference, so the request path never writes to this index.
        Index("ix_ledger_entries_payment_ref", "payment_ref",
              postgresql_where=text("payment_ref IS NOT NULL"), sqlite_where=text("payment_ref IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id", ondelete="CASCADE"))
    organization_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))  # recharge | debit | refund | adjustment | grant
    amount_micros: Mapped[int] = mapped_column(BigInteger)  # signed
    balance_after_micros: Mapped[int] = mapped_column(BigInteger)
    usage_record_id: Mapped[str | None] = mapped_column(String(40), unique=True, nullable=True)
    payment_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)

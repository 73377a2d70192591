"""One row per payment at Stripe or Mercado Pago (seed 002's `Payment` table)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class Payment(Timestamped, Base):
    """A recharge or subscription payment, as the provider's webhooks reported it.

    Written by the webhook processing: a wallet recharge in the same transaction as its
    ledger credit, refunds and disputes in the same transaction as their reversal entries.
    `ledger_key` is the credit's idempotency key; its reversals are `reversal:<ledger_key>:<n>`."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("provider", "external_id", name="uq_payments_provider_external"),
        Index("ix_payments_organization_id_id", "organization_id", "id"),
        Index("ix_payments_payment_ref", "payment_ref"),
        Index("ix_payments_ledger_key", "ledger_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # time-ordered: the listing's cursor
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))  # stripe | mercadopago
    external_id: Mapped[str] = mapped_column(String(200))  # Checkout Session / invoice id; MP payment id
    kind: Mapped[str] = mapped_column(String(20))  # recharge | subscription
    plan: Mapped[str | None] = mapped_column(String(40), nullable=True)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(10))
    # pending | succeeded | failed | refunded | partially_refunded | disputed
    status: Mapped[str] = mapped_column(String(30))
    refunded_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    disputed_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    dispute_status: Mapped[str | None] = mapped_column(String(20), nullable=True)  # open | won | lost
    payment_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)  # Stripe PaymentIntent: refunds find it
    ledger_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    organization_code_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the code it issued (never the code)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

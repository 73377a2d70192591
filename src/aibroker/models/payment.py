"""Paid access: organization codes, subscriptions, and the payment-provider event inbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class OrganizationCode(Timestamped, Base):
    """The 10-character code an organization receives when it pays (seed 002).

    It authenticates `x-organization-code` requests (where the organization allows it)
    and can be redeemed once, by `create-from-code`, to create the first owner of an
    organization that has no members. It is a credential: rotated, revoked, and expiring."""

    __tablename__ = "organization_codes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(10), unique=True)
    payment_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    redeemed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    redeemed_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # NULL: never expires (codes issued before migration 0012).
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Subscription(Timestamped, Base):
    """An organization's plan subscription at a payment provider (one row per organization)."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), unique=True)
    plan: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(20))  # stripe | mercadopago
    external_customer_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    external_subscription_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(30))  # provider's status: active, past_due, canceled ...
    current_period_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Provider timestamp of the last event applied: older events never overwrite newer state.
    last_event_at: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PaymentEvent(Timestamped, Base):
    """Inbox of provider notifications, unique by (provider, external id): each is applied once."""

    __tablename__ = "payment_events"
    __table_args__ = (UniqueConstraint("provider", "external_id", name="provider_external"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(100))
    organization_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

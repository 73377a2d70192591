"""The routing matrix (seed 003, AI_CONFIG_CORE): which AI serves which feature, for which
plan, profile and group. Every change bumps `routing_state.version` in the same
transaction, so every process notices it and reloads its in-memory snapshot."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class RoutingProvider(Timestamped, Base):
    """An AI provider the routing matrix may name (slug = the catalog's provider name)."""

    __tablename__ = "routing_providers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | disabled | testing
    relative_cost: Mapped[float] = mapped_column(Float, default=1.0)
    key_env: Mapped[str | None] = mapped_column(String(80), nullable=True)
    default_model: Mapped[str | None] = mapped_column(String(200), nullable=True)


class RoutingFeature(Timestamped, Base):
    """A product feature that uses AI (e.g. `diario_analise`)."""

    __tablename__ = "routing_features"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    category: Mapped[str] = mapped_column(String(20), default="chat")  # analysis | chat | generation | admin
    mode: Mapped[str] = mapped_column(String(20), default="single")  # single | consensus
    consensus_strategy: Mapped[str | None] = mapped_column(String(20), nullable=True)  # majority | weighted | synthesize
    consensus_model: Mapped[str | None] = mapped_column(String(200), nullable=True)


class RoutingFeatureProvider(Timestamped, Base):
    """The feature's default providers (any plan), with their role and weight."""

    __tablename__ = "routing_feature_providers"
    __table_args__ = (UniqueConstraint("feature_id", "provider_id", "model", name="feature_provider_model"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    feature_id: Mapped[str] = mapped_column(ForeignKey("routing_features.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("routing_providers.id", ondelete="CASCADE"))
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)  # None: the provider's default
    role: Mapped[str] = mapped_column(String(20), default="analysis")  # analysis | voting | consensus | generation
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RoutingPlanMatrix(Timestamped, Base):
    """Plan x feature x profile -> provider/model, with daily and monthly limits."""

    __tablename__ = "routing_plan_matrix"
    __table_args__ = (
        UniqueConstraint("plan", "feature_id", "profile", "provider_id", "model", name="plan_feature_profile_model"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    plan: Mapped[str] = mapped_column(String(40), index=True)
    feature_id: Mapped[str] = mapped_column(ForeignKey("routing_features.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("routing_providers.id", ondelete="CASCADE"))
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    profile: Mapped[str] = mapped_column(String(40), default="default")
    daily_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    monthly_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    origin: Mapped[str] = mapped_column(String(20), default="default")  # default | promo | exclusive
    priority: Mapped[int] = mapped_column(Integer, default=0)  # lower first: the fallback order


class RoutingGroupOverride(Timestamped, Base):
    """A group's (or one user's) provider for a feature, until `valid_until`."""

    __tablename__ = "routing_group_overrides"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_key: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    user_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    base_plan: Mapped[str | None] = mapped_column(String(40), nullable=True)
    feature_id: Mapped[str] = mapped_column(ForeignKey("routing_features.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("routing_providers.id", ondelete="CASCADE"))
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    valid_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)


class RoutingState(Base):
    """One row: the configuration's version (bumped with every change) and its vocabulary."""

    __tablename__ = "routing_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    plans: Mapped[list[str]] = mapped_column(JSON, default=list)
    profiles: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

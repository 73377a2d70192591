"""The routing tables as JSON, with slugs instead of internal ids where they point elsewhere."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.models import (
    RoutingFeature,
    RoutingFeatureProvider,
    RoutingGroupOverride,
    RoutingPlanMatrix,
    RoutingProvider,
)


class Names:
    """Slug lookups for provider and feature ids."""

    def __init__(self, providers: list[RoutingProvider], features: list[RoutingFeature]) -> None:
        self.providers = {p.id: p for p in providers}
        self.features = {f.id: f.slug for f in features}

    @classmethod
    async def load(cls, session: AsyncSession) -> Names:
        providers = list((await session.scalars(select(RoutingProvider).order_by(RoutingProvider.slug))).all())
        features = list((await session.scalars(select(RoutingFeature).order_by(RoutingFeature.slug))).all())
        return cls(providers, features)

    def model(self, provider_id: str, model: str | None) -> str | None:
        provider = self.providers[provider_id]
        name = model or provider.default_model
        return f"{provider.slug}/{name}" if name else None


def provider_view(p: RoutingProvider) -> dict[str, Any]:
    return {"id": p.id, "slug": p.slug, "display_name": p.display_name, "status": p.status,
            "relative_cost": p.relative_cost, "key_env": p.key_env, "default_model": p.default_model}


def feature_view(f: RoutingFeature) -> dict[str, Any]:
    return {"id": f.id, "slug": f.slug, "name": f.name, "description": f.description, "category": f.category,
            "mode": f.mode, "consensus_strategy": f.consensus_strategy, "consensus_model": f.consensus_model}


def feature_provider_view(r: RoutingFeatureProvider, names: Names) -> dict[str, Any]:
    return {"id": r.id, "feature": names.features[r.feature_id], "provider": names.providers[r.provider_id].slug,
            "model": names.model(r.provider_id, r.model), "role": r.role, "weight": r.weight, "active": r.active}


def matrix_view(r: RoutingPlanMatrix, names: Names) -> dict[str, Any]:
    return {"id": r.id, "plan": r.plan, "feature": names.features[r.feature_id], "profile": r.profile,
            "provider": names.providers[r.provider_id].slug, "model": names.model(r.provider_id, r.model),
            "daily_limit": r.daily_limit, "monthly_limit": r.monthly_limit, "active": r.active,
            "origin": r.origin, "priority": r.priority}


def override_view(r: RoutingGroupOverride, names: Names) -> dict[str, Any]:
    valid_until = r.valid_until
    if valid_until is not None and valid_until.tzinfo is None:  # SQLite drops the zone; we store UTC
        valid_until = valid_until.replace(tzinfo=dt.UTC)
    return {"id": r.id, "group_key": r.group_key, "user_id": r.user_id, "base_plan": r.base_plan,
            "feature": names.features[r.feature_id], "provider": names.providers[r.provider_id].slug,
            "model": names.model(r.provider_id, r.model), "priority": r.priority,
            "valid_until": valid_until.isoformat() if valid_until else None}


async def list_feature_providers(session: AsyncSession, names: Names) -> list[dict[str, Any]]:
    rows = (await session.scalars(select(RoutingFeatureProvider).order_by(RoutingFeatureProvider.created_at, RoutingFeatureProvider.id))).all()
    return [feature_provider_view(r, names) for r in rows]


async def list_matrix(session: AsyncSession, names: Names) -> list[dict[str, Any]]:
    rows = (await session.scalars(select(RoutingPlanMatrix).order_by(
        RoutingPlanMatrix.plan, RoutingPlanMatrix.profile, RoutingPlanMatrix.priority, RoutingPlanMatrix.created_at, RoutingPlanMatrix.id
    ))).all()
    return sorted((matrix_view(r, names) for r in rows), key=lambda v: (v["plan"], v["feature"], v["profile"], v["priority"]))


async def list_overrides(session: AsyncSession, names: Names) -> list[dict[str, Any]]:
    rows = (await session.scalars(select(RoutingGroupOverride).order_by(RoutingGroupOverride.created_at, RoutingGroupOverride.id))).all()
    return [override_view(r, names) for r in rows]

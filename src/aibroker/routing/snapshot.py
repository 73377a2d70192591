"""An immutable, in-memory copy of the routing configuration, and `resolve()` over it.

The hot path never queries the routing tables: each process holds one `Snapshot` and
swaps it whole when the configuration's version changes (see `runtime.py`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.models import (
    RoutingFeature,
    RoutingFeatureProvider,
    RoutingGroupOverride,
    RoutingPlanMatrix,
    RoutingProvider,
    RoutingState,
)

DEFAULT_PROFILE = "default"
DEFAULT_PLANS = ("free",)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    slug: str
    display_name: str
    status: str  # active | disabled | testing
    relative_cost: float
    key_env: str | None
    default_model: str | None


@dataclass(frozen=True, slots=True)
class FeatureInfo:
    slug: str
    name: str
    description: str | None
    category: str
    mode: str  # single | consensus
    consensus_strategy: str | None
    consensus_model: str | None


@dataclass(frozen=True, slots=True)
class Route:
    """One configured provider/model for a feature: a matrix row, a default or an override."""

    provider: str
    model: str  # catalog id: provider/model
    source: str  # user_override | group_override | plan_matrix | feature_default
    origin: str
    role: str = "analysis"
    weight: float = 1.0
    active: bool = True
    plan: str | None = None
    profile: str | None = None
    daily_limit: int | None = None
    monthly_limit: int | None = None
    priority: int = 0
    group_key: str | None = None
    user_id: str | None = None
    base_plan: str | None = None
    valid_until: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str
    model: str
    role: str
    weight: float
    daily_limit: int | None
    monthly_limit: int | None
    origin: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider, "model": self.model, "role": self.role, "weight": self.weight,
            "daily_limit": self.daily_limit, "monthly_limit": self.monthly_limit, "origin": self.origin,
        }


@dataclass(frozen=True, slots=True)
class Resolution:
    feature: FeatureInfo | None
    routed: bool  # False: the feature has no routing rows; the platform default applies
    allowed: bool
    reason: str  # why: the source of the primary candidate, or why access is refused
    message: str
    candidates: tuple[Candidate, ...] = ()
    daily_limit: int | None = None
    monthly_limit: int | None = None

    @property
    def has_limits(self) -> bool:
        return self.daily_limit is not None or self.monthly_limit is not None


UNROUTED = Resolution(None, routed=False, allowed=True, reason="unrouted", message="The feature has no routing rows.")


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite drops the zone; we store UTC
        return value.replace(tzinfo=dt.UTC)
    return value


def default_role(feature: FeatureInfo) -> str:
    return "analysis" if feature.category == "analysis" else "generation"


@dataclass
class Snapshot:
    version: int = 0
    plans: frozenset[str] = frozenset(DEFAULT_PLANS)
    profiles: frozenset[str] = frozenset((DEFAULT_PROFILE,))
    providers: dict[str, ProviderInfo] = field(default_factory=dict)
    features: dict[str, FeatureInfo] = field(default_factory=dict)
    defaults: dict[str, list[Route]] = field(default_factory=dict)  # feature -> feature-providers
    matrix: dict[str, list[Route]] = field(default_factory=dict)  # feature -> plan matrix rows
    overrides: dict[str, list[Route]] = field(default_factory=dict)  # feature -> overrides
    _memo: dict[tuple[str, str, str], Resolution] = field(default_factory=dict)

    # -- queries ------------------------------------------------------------------------

    def is_routed(self, feature: str | None) -> bool:
        return bool(feature) and feature in self.features and bool(
            self.matrix.get(feature) or self.defaults.get(feature) or self.overrides.get(feature)
        )

    def consensus_models(self, feature: str) -> list[str]:
        """Models that may write a consensus feature's final answer (synthesize strategy)."""
        info = self.features.get(feature)
        found = [info.consensus_model] if info and info.consensus_model else []
        found += [d.model for d in self.defaults.get(feature, ()) if d.role == "consensus" and d.active
                  and (p := self.providers.get(d.provider)) is not None and p.status != "disabled"]
        return found

    def role_and_weight(self, feature: FeatureInfo, provider: str, model: str) -> tuple[str, float]:
        fallback = None
        for route in self.defaults.get(feature.slug, ()):
            if route.provider == provider and route.model == model:
                return route.role, route.weight
            if route.provider == provider and fallback is None:
                fallback = route
        return (fallback.role, fallback.weight) if fallback else (default_role(feature), 1.0)

    def resolve(
        self, plan: str, feature: str, profile: str = DEFAULT_PROFILE, group: str | None = None,
        user: str | None = None, *, now: dt.datetime,
    ) -> Resolution:
        """Ordered candidates for this context. Precedence: the user's own override, a valid
        group override, the plan matrix, the feature's defaults. Disabled providers and
        expired overrides drop out."""
        plan = plan.lower()
        if not self.is_routed(feature):
            return UNROUTED
        if not self.overrides.get(feature):  # nothing time- or user-dependent: memoize
            key = (plan, feature, profile)
            found = self._memo.get(key)
            if found is None:
                found = self._memo[key] = self._resolve(plan, feature, profile, group, user, now)
            return found
        return self._resolve(plan, feature, profile, group, user, now)

    def _resolve(self, plan: str, feature_slug: str, profile: str, group: str | None, user: str | None, now: dt.datetime) -> Resolution:
        feature = self.features[feature_slug]
        matrix = self.matrix.get(feature_slug, [])
        rows = [r for r in matrix if r.plan == plan and r.active and r.profile == profile]
        if not rows:  # the "default" profile is the catch-all of a plan
            rows = [r for r in matrix if r.plan == plan and r.active and r.profile == DEFAULT_PROFILE]
        mine, groups = [], []
        for o in self.overrides.get(feature_slug, ()):
            if (o.valid_until is not None and o.valid_until <= now) or (o.base_plan and o.base_plan != plan):
                continue
            if o.user_id is not None:
                if user is not None and o.user_id == user:
                    mine.append(o)
            elif group is not None and o.group_key == group:
                groups.append(o)
        if matrix and not rows and not mine and not groups:
            return Resolution(
                feature, routed=True, allowed=False, reason="feature_not_in_plan",
                message=f"The plan '{plan}' has no access to the feature '{feature_slug}' (profile '{profile}').",
            )
        daily = rows[0].daily_limit if rows else None
        monthly = rows[0].monthly_limit if rows else None
        defaults = [d for d in self.defaults.get(feature_slug, ()) if d.active and d.role != "consensus"]
        seen: set[str] = set()
        active: list[tuple[Route, Candidate]] = []
        testing: list[tuple[Route, Candidate]] = []
        # The feature's defaults are the last level: they serve only when the plan matrix
        # offers no provider (no matrix for the feature, or every row's provider disabled).
        for level in (mine, groups, rows, defaults):
            if level is defaults and any(r.source == "plan_matrix" for r, _ in active + testing):
                break
            for route in level:
                provider = self.providers.get(route.provider)
                if provider is None or provider.status == "disabled" or route.model in seen:
                    continue
                seen.add(route.model)
                if route.source == "feature_default":
                    role, weight = route.role, route.weight
                else:
                    role, weight = self.role_and_weight(feature, route.provider, route.model)
                limits = (route.daily_limit, route.monthly_limit) if route.source == "plan_matrix" else (daily, monthly)
                candidate = Candidate(route.provider, route.model, role, weight, *limits, route.origin)
                # Providers under test serve only when every active one has failed.
                (testing if provider.status == "testing" else active).append((route, candidate))
        chosen = active + testing
        if not chosen:
            return Resolution(
                feature, routed=True, allowed=False, reason="no_active_provider",
                message=f"Every provider configured for the feature '{feature_slug}' is disabled.",
            )
        source = chosen[0][0].source
        return Resolution(
            feature, routed=True, allowed=True, reason=source, message=f"served by the {source.replace('_', ' ')}",
            candidates=tuple(c for _, c in chosen), daily_limit=daily, monthly_limit=monthly,
        )


async def load_snapshot(session: AsyncSession) -> Snapshot:
    """Read the whole configuration (a few small tables) into a fresh snapshot."""
    state = await session.get(RoutingState, 1)
    providers_by_id = {p.id: p for p in (await session.scalars(select(RoutingProvider))).all()}
    features_by_id = {f.id: f for f in (await session.scalars(select(RoutingFeature))).all()}
    snap = Snapshot(
        version=state.version if state else 0,
        plans=frozenset(state.plans) if state and state.plans else frozenset(DEFAULT_PLANS),
        profiles=frozenset({DEFAULT_PROFILE, *(state.profiles or [])}) if state else frozenset((DEFAULT_PROFILE,)),
    )
    for p in providers_by_id.values():
        snap.providers[p.slug] = ProviderInfo(p.slug, p.display_name, p.status, p.relative_cost, p.key_env, p.default_model)
    for f in features_by_id.values():
        snap.features[f.slug] = FeatureInfo(f.slug, f.name, f.description, f.category, f.mode, f.consensus_strategy, f.consensus_model)

    def model_id(provider_id: str, model: str | None) -> tuple[str, str]:
        p = providers_by_id[provider_id]
        return p.slug, f"{p.slug}/{model or p.default_model or ''}"

    defaults: dict[str, list[Route]] = defaultdict(list)
    for row in (await session.scalars(select(RoutingFeatureProvider).order_by(RoutingFeatureProvider.created_at, RoutingFeatureProvider.id))).all():
        slug, mid = model_id(row.provider_id, row.model)
        defaults[features_by_id[row.feature_id].slug].append(
            Route(slug, mid, "feature_default", "feature_default", role=row.role, weight=row.weight, active=row.active)
        )
    for routes in defaults.values():
        routes.sort(key=lambda r: -r.weight)
    matrix: dict[str, list[Route]] = defaultdict(list)
    for row in (await session.scalars(select(RoutingPlanMatrix).order_by(RoutingPlanMatrix.priority, RoutingPlanMatrix.created_at, RoutingPlanMatrix.id))).all():
        slug, mid = model_id(row.provider_id, row.model)
        matrix[features_by_id[row.feature_id].slug].append(
            Route(slug, mid, "plan_matrix", row.origin, active=row.active, plan=row.plan, profile=row.profile,
                  daily_limit=row.daily_limit, monthly_limit=row.monthly_limit, priority=row.priority)
        )
    overrides: dict[str, list[Route]] = defaultdict(list)
    for row in (await session.scalars(select(RoutingGroupOverride).order_by(RoutingGroupOverride.priority, RoutingGroupOverride.created_at, RoutingGroupOverride.id))).all():
        slug, mid = model_id(row.provider_id, row.model)
        source = "user_override" if row.user_id else "group_override"
        overrides[features_by_id[row.feature_id].slug].append(
            Route(slug, mid, source, source, group_key=row.group_key, user_id=row.user_id, base_plan=row.base_plan,
                  valid_until=_aware(row.valid_until), priority=row.priority)
        )
    snap.defaults, snap.matrix, snap.overrides = dict(defaults), dict(matrix), dict(overrides)
    return snap

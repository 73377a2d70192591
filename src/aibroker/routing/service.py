"""Writes to the routing configuration, validated so that no broken route is ever stored.

Every write bumps `routing_state.version` in the same transaction (other processes reload
within seconds). Services take a session and never commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.catalog.service import Catalog
from aibroker.errors import Conflict, InvalidRequest, NotFound
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import (
    RoutingFeature,
    RoutingFeatureProvider,
    RoutingGroupOverride,
    RoutingPlanMatrix,
    RoutingProvider,
    RoutingState,
)
from aibroker.routing import schemas as s
from aibroker.routing.snapshot import DEFAULT_PLANS, DEFAULT_PROFILE


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


class RoutingService:
    def __init__(self, session: AsyncSession, catalog: Catalog) -> None:
        self.session = session
        self.catalog = catalog

    # -- version and vocabulary ---------------------------------------------------------

    async def bump(self) -> None:
        """Mark the configuration changed (same transaction as the change itself)."""
        result = await self.session.execute(
            update(RoutingState).where(RoutingState.id == 1).values(version=RoutingState.version + 1, updated_at=utcnow())
        )
        if result.rowcount == 0:  # the state row was removed (e.g. a truncated database)
            self.session.add(RoutingState(id=1, version=1, plans=list(DEFAULT_PLANS), profiles=[DEFAULT_PROFILE], updated_at=utcnow()))
        await self.session.flush()

    async def state(self) -> RoutingState:
        state = await self.session.get(RoutingState, 1)
        if state is None:
            state = RoutingState(id=1, version=0, plans=list(DEFAULT_PLANS), profiles=[DEFAULT_PROFILE])
            self.session.add(state)
            await self.session.flush()
        return state

    async def vocabulary(self) -> tuple[list[str], list[str]]:
        """Known plans (the routing vocabulary plus the plans table, when there is one) and profiles."""
        state = await self.state()
        return sorted({*(state.plans or []), *await self._plan_table()}), sorted({DEFAULT_PROFILE, *(state.profiles or [])})

    async def _plan_table(self) -> list[str]:
        try:
            from aibroker.models import (
                PlanRow,  # the limits package's plans (when installed)
            )
        except ImportError:  # pragma: no cover
            return []
        return list((await self.session.scalars(select(PlanRow.slug))).all())

    async def set_vocabulary(self, plans: list[str] | None, profiles: list[str] | None, *, merge: bool = False) -> None:
        state = await self.state()
        if plans is not None:
            new = [p.strip().lower() for p in plans if p.strip()]
            state.plans = sorted({*(state.plans or []), *new}) if merge else sorted(set(new))
        if profiles is not None:
            new = [p.strip() for p in profiles if p.strip()]
            state.profiles = sorted({DEFAULT_PROFILE, *(state.profiles or []), *new} if merge else {DEFAULT_PROFILE, *new})
        await self.bump()

    async def check_plan(self, plan: str, param: str = "plan") -> str:
        plans, _ = await self.vocabulary()
        plan = plan.strip().lower()
        if plan not in plans:
            raise InvalidRequest(f"Unknown plan '{plan}'. Known plans: {', '.join(plans) or 'none'} "
                                 "(PUT /api/admin/routing/vocabulary adds plans).", param=param, code="unknown_plan")
        return plan

    async def check_profile(self, profile: str) -> str:
        _, profiles = await self.vocabulary()
        if profile not in profiles:
            raise InvalidRequest(f"Unknown profile '{profile}'. Known profiles: {', '.join(profiles)}.",
                                 param="profile", code="unknown_profile")
        return profile

    # -- lookups ------------------------------------------------------------------------

    async def provider_by_slug(self, slug: str, *, param: str = "provider") -> RoutingProvider:
        row = await self.session.scalar(select(RoutingProvider).where(RoutingProvider.slug == slug))
        if row is None:
            raise InvalidRequest(f"Unknown provider '{slug}'. Create it first (POST /api/admin/routing/providers).",
                                 param=param, code="unknown_provider")
        return row

    async def feature_by_slug(self, slug: str, *, param: str = "feature") -> RoutingFeature:
        row = await self.session.scalar(select(RoutingFeature).where(RoutingFeature.slug == slug))
        if row is None:
            raise InvalidRequest(f"Unknown feature '{slug}'. Create it first (POST /api/admin/routing/features).",
                                 param=param, code="unknown_feature")
        return row

    async def get(self, table: type[Any], row_id: str) -> Any:
        row = await self.session.get(table, row_id)
        if row is None:
            raise NotFound(f"No {table.__tablename__.removeprefix('routing_').replace('_', ' ')} row '{row_id}'.")
        return row

    def model_name(self, provider: RoutingProvider, model: str | None, *, param: str = "model") -> str | None:
        """Normalise `provider/model` or `model`; the catalog must know it (None: the provider's default)."""
        if model is None:
            if not provider.default_model:
                raise InvalidRequest(f"The provider '{provider.slug}' has no default model: name a model.",
                                     param=param, code="unknown_model")
            return None
        name = model.removeprefix(provider.slug + "/")
        if self.catalog.get(f"{provider.slug}/{name}") is None:
            raise InvalidRequest(f"The catalog has no model '{provider.slug}/{name}' (GET /v1/models lists models; "
                                 "a database override can add one).", param=param, code="unknown_model")
        return name

    @staticmethod
    def check_weight(weight: float) -> float:
        if not 0 <= weight <= s.MAX_WEIGHT:
            raise InvalidRequest(f"weight must be between 0 and {s.MAX_WEIGHT:g}; got {weight:g}.",
                                 param="weight", code="weight_out_of_range")
        return weight

    # -- providers ----------------------------------------------------------------------

    async def save_provider(self, data: s.ProviderCreate, *, upsert: bool = False) -> RoutingProvider:
        row = await self.session.scalar(select(RoutingProvider).where(RoutingProvider.slug == data.slug))
        if row is not None and not upsert:
            raise Conflict(f"The provider '{data.slug}' already exists.", param="slug", code="duplicate")
        if row is None:
            row = RoutingProvider(id=new_id("rpv"), slug=data.slug)
            self.session.add(row)
        fields = data.model_dump(exclude={"slug"})
        fields["display_name"] = fields["display_name"] or data.slug
        await self._apply_provider(row, fields)
        return row

    async def update_provider(self, row_id: str, data: s.ProviderUpdate) -> RoutingProvider:
        row = await self.get(RoutingProvider, row_id)
        await self._apply_provider(row, data.model_dump(exclude_unset=True))
        return row

    async def _apply_provider(self, row: RoutingProvider, fields: dict[str, Any]) -> None:
        if fields.get("default_model"):
            name = fields["default_model"].removeprefix(row.slug + "/")
            if self.catalog.get(f"{row.slug}/{name}") is None:
                raise InvalidRequest(f"The catalog has no model '{row.slug}/{name}'.", param="default_model", code="unknown_model")
            fields["default_model"] = name
        for key, value in fields.items():
            setattr(row, key, value)
        await self.session.flush()
        await self.bump()

    # -- features -----------------------------------------------------------------------

    async def save_feature(self, data: s.FeatureCreate, *, upsert: bool = False) -> RoutingFeature:
        row = await self.session.scalar(select(RoutingFeature).where(RoutingFeature.slug == data.slug))
        if row is not None and not upsert:
            raise Conflict(f"The feature '{data.slug}' already exists.", param="slug", code="duplicate")
        if row is None:
            row = RoutingFeature(id=new_id("rft"), slug=data.slug)
            self.session.add(row)
        fields = data.model_dump(exclude={"slug"})
        fields["name"] = fields["name"] or data.slug
        await self._apply_feature(row, fields)
        return row

    async def update_feature(self, row_id: str, data: s.FeatureUpdate) -> RoutingFeature:
        row = await self.get(RoutingFeature, row_id)
        await self._apply_feature(row, data.model_dump(exclude_unset=True))
        return row

    async def _apply_feature(self, row: RoutingFeature, fields: dict[str, Any]) -> None:
        for key, value in fields.items():
            setattr(row, key, value)
        if row.mode == "consensus" and not row.consensus_strategy:
            row.consensus_strategy = "majority"
        if row.consensus_model:
            provider, _, name = row.consensus_model.partition("/")
            if not name or self.catalog.get(row.consensus_model) is None:
                raise InvalidRequest(f"The catalog has no model '{row.consensus_model}' (use `provider/model`).",
                                     param="consensus_model", code="unknown_model")
        await self.session.flush()
        await self.bump()

    # -- feature providers --------------------------------------------------------------

    async def save_feature_provider(self, data: s.FeatureProviderCreate, *, upsert: bool = False) -> RoutingFeatureProvider:
        feature = await self.feature_by_slug(data.feature)
        provider = await self.provider_by_slug(data.provider)
        model = self.model_name(provider, data.model)
        self.check_weight(data.weight)
        row = await self.session.scalar(select(RoutingFeatureProvider).where(
            RoutingFeatureProvider.feature_id == feature.id, RoutingFeatureProvider.provider_id == provider.id,
            RoutingFeatureProvider.model.is_(None) if model is None else RoutingFeatureProvider.model == model,
        ))
        if row is not None and not upsert:
            raise Conflict(f"'{data.feature}' already has the provider '{data.provider}' ({model or 'default model'}).", code="duplicate")
        if row is None:
            row = RoutingFeatureProvider(id=new_id("rfp"), feature_id=feature.id, provider_id=provider.id, model=model)
            self.session.add(row)
        row.role, row.weight, row.active = data.role, data.weight, data.active
        await self.session.flush()
        await self.bump()
        return row

    async def update_feature_provider(self, row_id: str, data: s.FeatureProviderUpdate) -> RoutingFeatureProvider:
        row = await self.get(RoutingFeatureProvider, row_id)
        fields = data.model_dump(exclude_unset=True)
        if fields.get("weight") is not None:
            self.check_weight(fields["weight"])
        for key, value in fields.items():
            if value is not None:
                setattr(row, key, value)
        await self.session.flush()
        await self.bump()
        return row

    # -- plan matrix --------------------------------------------------------------------

    async def save_matrix_row(self, data: s.MatrixRowCreate, *, upsert: bool = False) -> RoutingPlanMatrix:
        plan = await self.check_plan(data.plan)
        profile = await self.check_profile(data.profile)
        feature = await self.feature_by_slug(data.feature)
        provider = await self.provider_by_slug(data.provider)
        model = self.model_name(provider, data.model)
        row = await self.session.scalar(select(RoutingPlanMatrix).where(
            RoutingPlanMatrix.plan == plan, RoutingPlanMatrix.feature_id == feature.id, RoutingPlanMatrix.profile == profile,
            RoutingPlanMatrix.provider_id == provider.id,
            RoutingPlanMatrix.model.is_(None) if model is None else RoutingPlanMatrix.model == model,
        ))
        if row is not None and not upsert:
            raise Conflict(f"The matrix already has {plan} / {data.feature} / {profile} -> {data.provider} ({model or 'default model'}).", code="duplicate")
        if row is None:
            row = RoutingPlanMatrix(id=new_id("rpm"), plan=plan, feature_id=feature.id, profile=profile, provider_id=provider.id, model=model)
            self.session.add(row)
        for key in ("daily_limit", "monthly_limit", "active", "origin", "priority"):
            setattr(row, key, getattr(data, key))
        await self.session.flush()
        await self.bump()
        return row

    async def update_matrix_row(self, row_id: str, data: s.MatrixRowUpdate) -> RoutingPlanMatrix:
        row = await self.get(RoutingPlanMatrix, row_id)
        fields = data.model_dump(exclude_unset=True)
        if "model" in fields:
            provider = await self.get(RoutingProvider, row.provider_id)
            fields["model"] = self.model_name(provider, fields["model"])
        for key, value in fields.items():
            setattr(row, key, value)
        await self.session.flush()
        await self.bump()
        return row

    # -- group overrides ----------------------------------------------------------------

    async def save_override(self, data: s.OverrideCreate, *, upsert: bool = False) -> RoutingGroupOverride:
        if not data.group_key and not data.user_id:
            raise InvalidRequest("An override needs a group_key or a user_id.", param="group_key")
        base_plan = await self.check_plan(data.base_plan, "base_plan") if data.base_plan else None
        feature = await self.feature_by_slug(data.feature)
        provider = await self._override_provider(data.provider)
        model = self.model_name(provider, data.model)
        valid_until = _aware(data.valid_until)
        if valid_until is not None and valid_until <= utcnow() and not upsert:
            raise InvalidRequest("valid_until is in the past: the override would never apply.", param="valid_until")
        row = None
        if upsert:
            row = await self.session.scalar(select(RoutingGroupOverride).where(
                RoutingGroupOverride.feature_id == feature.id,
                RoutingGroupOverride.group_key.is_(None) if data.group_key is None else RoutingGroupOverride.group_key == data.group_key,
                RoutingGroupOverride.user_id.is_(None) if data.user_id is None else RoutingGroupOverride.user_id == data.user_id,
                RoutingGroupOverride.provider_id == provider.id,
            ))
        if row is None:
            row = RoutingGroupOverride(id=new_id("rgo"), feature_id=feature.id, group_key=data.group_key, user_id=data.user_id)
            self.session.add(row)
        row.base_plan, row.provider_id, row.model, row.valid_until, row.priority = base_plan, provider.id, model, valid_until, data.priority
        await self.session.flush()
        await self.bump()
        return row

    async def update_override(self, row_id: str, data: s.OverrideUpdate) -> RoutingGroupOverride:
        row = await self.get(RoutingGroupOverride, row_id)
        fields = data.model_dump(exclude_unset=True)
        provider = await self._override_provider(fields["provider"]) if fields.get("provider") else await self.get(RoutingProvider, row.provider_id)
        row.provider_id = provider.id
        if "model" in fields or "provider" in fields:
            row.model = self.model_name(provider, fields.get("model", row.model))
        if "valid_until" in fields:
            row.valid_until = _aware(fields["valid_until"])
        if fields.get("priority") is not None:
            row.priority = fields["priority"]
        await self.session.flush()
        await self.bump()
        return row

    async def _override_provider(self, slug: str) -> RoutingProvider:
        provider = await self.provider_by_slug(slug)
        if provider.status == "disabled":
            raise InvalidRequest(f"The provider '{slug}' is disabled: an override to it would never serve.",
                                 param="provider", code="provider_disabled")
        return provider

    # -- deletes ------------------------------------------------------------------------

    async def delete(self, table: type[Any], row_id: str) -> None:
        """Delete one row (a feature or provider takes its matrix rows and overrides with it)."""
        row = await self.get(table, row_id)
        await self.session.delete(row)
        await self.session.flush()
        await self.bump()

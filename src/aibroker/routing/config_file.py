"""Load a routing configuration from YAML (`aibroker config load FILE`), idempotently.

Rows are matched by their natural keys (provider slug, feature slug, plan x feature x
profile x provider x model, group/user x feature x provider) and updated in place, so
loading the same file twice leaves the same configuration. Rows the file does not name
are kept. Everything is validated like the admin API; one transaction: all or nothing.

A matrix entry may name several `features` and several `providers` (in fallback order):
it stands for one row per feature and provider.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.catalog.service import Catalog
from aibroker.errors import BrokerError, InvalidRequest
from aibroker.routing import schemas as s
from aibroker.routing.service import RoutingService


class ProviderRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str
    model: str | None = None


class MatrixEntry(BaseModel):
    """One or more matrix rows: every feature x every provider (providers in fallback order)."""

    model_config = ConfigDict(extra="forbid")

    plan: str
    profile: str = "default"
    feature: str | None = None
    features: list[str] = Field(default_factory=list)
    provider: str | None = None
    model: str | None = None
    providers: list[ProviderRef] = Field(default_factory=list)
    daily_limit: int | None = Field(default=None, ge=0)
    monthly_limit: int | None = Field(default=None, ge=0)
    active: bool = True
    origin: s.Origin = "default"
    priority: int = 0

    @model_validator(mode="after")
    def _names_something(self) -> MatrixEntry:
        if not (self.feature or self.features) or not (self.provider or self.providers):
            raise ValueError("a matrix entry needs `feature` or `features`, and `provider` or `providers`")
        return self

    def rows(self) -> list[s.MatrixRowCreate]:
        features = [self.feature] if self.feature else self.features
        providers = [ProviderRef(provider=self.provider, model=self.model)] if self.provider else self.providers
        return [
            s.MatrixRowCreate(
                plan=self.plan, feature=f, provider=p.provider, model=p.model, profile=self.profile,
                daily_limit=self.daily_limit, monthly_limit=self.monthly_limit, active=self.active,
                origin=self.origin, priority=self.priority + i,
            )
            for f in features
            for i, p in enumerate(providers)
        ]


class ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plans: list[str] = Field(default_factory=list)
    profiles: list[str] = Field(default_factory=list)
    providers: list[s.ProviderCreate] = Field(default_factory=list)
    features: list[s.FeatureCreate] = Field(default_factory=list)
    feature_providers: list[s.FeatureProviderCreate] = Field(default_factory=list)
    matrix: list[MatrixEntry] = Field(default_factory=list)
    overrides: list[s.OverrideCreate] = Field(default_factory=list)


def parse(text: str) -> ConfigFile:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"The file is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The file must hold a mapping (plans, profiles, providers, features, ...).")
    try:
        return ConfigFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']}") from exc


async def apply(session: AsyncSession, catalog: Catalog, config: ConfigFile) -> dict[str, int]:
    """Upsert everything the file names (the caller commits)."""
    service = RoutingService(session, catalog)
    counts = {"providers": 0, "features": 0, "feature_providers": 0, "matrix": 0, "overrides": 0}

    async def each(section: str, items: list[Any], save: Any) -> None:
        for i, item in enumerate(items):
            try:
                await save(item, upsert=True)
            except BrokerError as exc:
                raise InvalidRequest(f"{section}[{i}]: {exc.message}", param=exc.param, code=exc.code) from exc
            counts[section.split("[")[0]] += 1

    if config.plans or config.profiles:
        await service.set_vocabulary(config.plans or None, config.profiles or None, merge=True)
    await each("providers", config.providers, service.save_provider)
    await each("features", config.features, service.save_feature)
    await each("feature_providers", config.feature_providers, service.save_feature_provider)
    for i, entry in enumerate(config.matrix):
        await each(f"matrix[{i}]", entry.rows(), service.save_matrix_row)
    await each("overrides", config.overrides, service.save_override)
    return counts


async def load_file(path: Path, *, database_url: str | None = None) -> dict[str, Any]:
    """`aibroker config load FILE`: parse, validate against the catalog, upsert, commit."""
    from aibroker.config import get_settings
    from aibroker.db import Database
    from aibroker.providers.specs import enabled_providers

    config = parse(path.read_text(encoding="utf-8"))
    settings = get_settings()
    catalog = Catalog(set(enabled_providers()), settings.gateway.aliases)
    db = Database(database_url)
    try:
        async with db.sessions() as session:
            await catalog.load_overrides(session)
            counts = await apply(session, catalog, config)
            await session.commit()
    finally:
        await db.dispose()
    return {"file": str(path), "loaded_at": dt.datetime.now(dt.UTC).isoformat(), **counts}

"""Request and response shapes of the routing admin API and the YAML configuration."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ProviderStatus = Literal["active", "disabled", "testing"]
Category = Literal["analysis", "chat", "generation", "admin"]
Role = Literal["analysis", "voting", "consensus", "generation"]
Origin = Literal["default", "promo", "exclusive"]
Mode = Literal["single", "consensus"]
Strategy = Literal["majority", "weighted", "synthesize"]

MAX_WEIGHT = 100.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderCreate(_Strict):
    slug: str = Field(min_length=1, max_length=60, description="The catalog's provider name, e.g. `openai`.")
    display_name: str | None = Field(default=None, max_length=120)
    status: ProviderStatus = Field(default="active", description="active | disabled | testing (serves only after every active one).")
    relative_cost: float = Field(default=1.0, ge=0, description="Cost weight (1.0 = base); informative.")
    key_env: str | None = Field(default=None, max_length=80, description="The environment variable holding its API key.")
    default_model: str | None = Field(default=None, max_length=200, description="Model used when a row names none.")


class ProviderUpdate(_Strict):
    display_name: str | None = None
    status: ProviderStatus | None = None
    relative_cost: float | None = Field(default=None, ge=0)
    key_env: str | None = None
    default_model: str | None = None


class FeatureCreate(_Strict):
    slug: str = Field(min_length=1, max_length=80, description="What requests name in `x-aibroker-feature`.")
    name: str | None = Field(default=None, max_length=200)
    description: str | None = None
    category: Category = "chat"
    mode: Mode = Field(default="single", description="consensus: every voting provider answers; see consensus_strategy.")
    consensus_strategy: Strategy | None = Field(default=None, description="majority | weighted | synthesize (default majority).")
    consensus_model: str | None = Field(default=None, description="synthesize: the `provider/model` writing the final answer.")


class FeatureUpdate(_Strict):
    name: str | None = None
    description: str | None = None
    category: Category | None = None
    mode: Mode | None = None
    consensus_strategy: Strategy | None = None
    consensus_model: str | None = None


class FeatureProviderCreate(_Strict):
    feature: str = Field(description="Feature slug.")
    provider: str = Field(description="Provider slug.")
    model: str | None = Field(default=None, description="Model name (or `provider/model`); the provider's default when omitted.")
    role: Role = "analysis"
    weight: float = Field(default=1.0, description=f"0..{MAX_WEIGHT:g}; orders defaults and weighs votes.")
    active: bool = True


class FeatureProviderUpdate(_Strict):
    role: Role | None = None
    weight: float | None = None
    active: bool | None = None


class MatrixRowCreate(_Strict):
    plan: str = Field(description="A plan of the routing vocabulary (GET /api/admin/routing/vocabulary).")
    feature: str
    provider: str
    model: str | None = None
    profile: str = Field(default="default", description="`default` serves every profile without rows of its own.")
    daily_limit: int | None = Field(default=None, ge=0, description="Requests per local day; none: unlimited.")
    monthly_limit: int | None = Field(default=None, ge=0, description="Requests per local month; none: unlimited.")
    active: bool = True
    origin: Origin = "default"
    priority: int = Field(default=0, description="Lower is tried first (the fallback order).")


class MatrixRowUpdate(_Strict):
    model: str | None = None
    daily_limit: int | None = Field(default=None, ge=0)
    monthly_limit: int | None = Field(default=None, ge=0)
    active: bool | None = None
    origin: Origin | None = None
    priority: int | None = None


class OverrideCreate(_Strict):
    group_key: str | None = Field(default=None, max_length=80, description="Requests sending `x-aibroker-group: <key>`.")
    user_id: str | None = Field(default=None, max_length=120, description="Only this user (any group).")
    base_plan: str | None = Field(default=None, description="Only for this plan; any plan when omitted.")
    feature: str
    provider: str
    model: str | None = None
    valid_until: dt.datetime | None = Field(default=None, description="Expiry (UTC when no zone); never applies after it.")
    priority: int = 0


class OverrideUpdate(_Strict):
    provider: str | None = None
    model: str | None = None
    valid_until: dt.datetime | None = None
    priority: int | None = None


class Vocabulary(_Strict):
    plans: list[str] = Field(description="The plans the matrix may name (organizations' `plan`).")
    profiles: list[str] = Field(description="The profiles requests may send (`x-aibroker-profile`); `default` is implied.")


class ResolveRequest(_Strict):
    plan: str
    feature: str
    profile: str = "default"
    group: str | None = None
    user_id: str | None = None
    organization_id: str | None = Field(default=None, description="Also check the limits against this organization's usage.")

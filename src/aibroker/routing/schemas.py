"""Request and response shapes of the routing admin API and the YAML configuration."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ProviderStatus = Literal["active", "disabled", "testing"]
Category = Literal["analysis", "chat", "generation", "admin"]
Role = Literal["analysis", "voting", "consensus", "generation"]
Origin = Literal["default", "promo", "exclusive"]
Mode = Literal["single", "consensus"]
Strategy = Literal["majority", "weighted", "synthesize"]

MAX_WEIGHT = 100.0
# Limits and priorities are INTEGER columns; relative costs are informative weights.
INT32 = 2**31 - 1
MAX_COST = 1e6


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderCreate(_Strict):
    slug: str = Field(min_length=1, max_length=60, description="The catalog's provider name, e.g. `openai`.")
    display_name: str | None = Field(default=None, max_length=120)
    status: ProviderStatus = Field(default="active", description="active | disabled | testing (serves only after every active one).")
    relative_cost: float = Field(default=1.0, ge=0, le=MAX_COST, description="Cost weight (1.0 = base); informative.")
    key_env: str | None = Field(default=None, max_length=80, description="The environment variable holding its API key.")
    default_model: str | None = Field(default=None, max_length=200, description="Model used when a row names none.")


class ProviderUpdate(_Strict):
    display_name: str | None = Field(default=None, max_length=120)
    status: ProviderStatus | None = None
    relative_cost: float | None = Field(default=None, ge=0, le=MAX_COST)
    key_env: str | None = Field(default=None, max_length=80)
    default_model: str | None = Field(default=None, max_length=200)


class FeatureCreate(_Strict):
    slug: str = Field(min_length=1, max_length=80, description="What requests name in `x-aibroker-feature`.")
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    category: Category = "chat"
    mode: Mode = Field(default="single", description="consensus: every voting provider answers; see consensus_strategy.")
    consensus_strategy: Strategy | None = Field(default=None, description="majority | weighted | synthesize (default majority).")
    consensus_model: str | None = Field(default=None, max_length=200, description="synthesize: the `provider/model` writing the final answer.")


class FeatureUpdate(_Strict):
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    category: Category | None = None
    mode: Mode | None = None
    consensus_strategy: Strategy | None = None
    consensus_model: str | None = Field(default=None, max_length=200)


class FeatureProviderCreate(_Strict):
    feature: str = Field(max_length=80, description="Feature slug.")
    provider: str = Field(max_length=60, description="Provider slug.")
    model: str | None = Field(default=None, max_length=200, description="Model name (or `provider/model`); the provider's default when omitted.")
    role: Role = "analysis"
    weight: float = Field(default=1.0, description=f"0..{MAX_WEIGHT:g}; orders defaults and weighs votes.")  # checked by the service (400)
    active: bool = True


class FeatureProviderUpdate(_Strict):
    role: Role | None = None
    weight: float | None = None  # checked by the service (400 weight_out_of_range)
    active: bool | None = None


class MatrixRowCreate(_Strict):
    plan: str = Field(max_length=40, description="A plan of the routing vocabulary (GET /api/admin/routing/vocabulary).")
    feature: str = Field(max_length=80)
    provider: str = Field(max_length=60)
    model: str | None = Field(default=None, max_length=200)
    profile: str = Field(default="default", max_length=40, description="`default` serves every profile without rows of its own.")
    daily_limit: int | None = Field(default=None, ge=0, le=INT32, description="Requests per local day; none: unlimited.")
    monthly_limit: int | None = Field(default=None, ge=0, le=INT32, description="Requests per local month; none: unlimited.")
    active: bool = True
    origin: Origin = "default"
    priority: int = Field(default=0, ge=-INT32, le=INT32, description="Lower is tried first (the fallback order).")


class MatrixRowUpdate(_Strict):
    model: str | None = Field(default=None, max_length=200)
    daily_limit: int | None = Field(default=None, ge=0, le=INT32)
    monthly_limit: int | None = Field(default=None, ge=0, le=INT32)
    active: bool | None = None
    origin: Origin | None = None
    priority: int | None = Field(default=None, ge=-INT32, le=INT32)


class OverrideCreate(_Strict):
    group_key: str | None = Field(default=None, max_length=80, description="Requests sending `x-aibroker-group: <key>`.")
    user_id: str | None = Field(default=None, max_length=120, description="Only this user (any group).")
    base_plan: str | None = Field(default=None, max_length=40, description="Only for this plan; any plan when omitted.")
    feature: str = Field(max_length=80)
    provider: str = Field(max_length=60)
    model: str | None = Field(default=None, max_length=200)
    valid_until: dt.datetime | None = Field(default=None, description="Expiry (UTC when no zone); never applies after it.")
    priority: int = Field(default=0, ge=-INT32, le=INT32)


class OverrideUpdate(_Strict):
    provider: str | None = Field(default=None, max_length=60)
    model: str | None = Field(default=None, max_length=200)
    valid_until: dt.datetime | None = None
    priority: int | None = Field(default=None, ge=-INT32, le=INT32)


class Vocabulary(_Strict):
    plans: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        max_length=1000, description="The plans the matrix may name (organizations' `plan`).")
    profiles: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        max_length=1000, description="The profiles requests may send (`x-aibroker-profile`); `default` is implied.")


class ResolveRequest(_Strict):
    plan: str
    feature: str
    profile: str = "default"
    group: str | None = None
    user_id: str | None = None
    organization_id: str | None = Field(default=None, description="Also check the limits against this organization's usage.")

"""What a call costs: tokens x catalog price, then the margin, rounded up once."""

from __future__ import annotations

from dataclasses import dataclass

from aibroker.catalog.registry import ModelEntry
from aibroker.kit.money import BPS, TOKENS_PER_PRICE_UNIT, apply_margin, ceil_div
from aibroker.providers.base import Usage


@dataclass(frozen=True, slots=True)
class Cost:
    provider_micros: int
    billed_micros: int
    margin_bps: int


def exact_cost(model: ModelEntry, usage: Usage) -> int:
    """Provider cost in micro-micros (micros x 1e6): exact, no rounding yet."""
    cached = min(usage.cached_tokens, usage.input_tokens)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    plain = usage.input_tokens - cached - written
    return (
        plain * model.input_micros_per_m
        + cached * model.cached_input_micros_per_m
        + written * model.cache_write_micros_per_m
        + usage.output_tokens * model.output_micros_per_m
    )


def cost_of(model: ModelEntry, usage: Usage, margin_bps: int, *, byok_fee_micros: int | None = None, discount_bps: int = 0) -> Cost:
    """`discount_bps` (a plan's batch discount) comes off the billed price, margin included;
    the provider cost is what it is. Still rounded up once."""
    exact = exact_cost(model, usage)
    provider = ceil_div(exact, TOKENS_PER_PRICE_UNIT)
    if byok_fee_micros is not None:
        # Bring-your-own-key: the provider bills the tenant directly; we charge only our fee.
        return Cost(provider_micros=provider, billed_micros=byok_fee_micros, margin_bps=0)
    if discount_bps:
        billed = ceil_div(exact * (BPS + margin_bps) * (BPS - min(discount_bps, BPS)), BPS * BPS * TOKENS_PER_PRICE_UNIT)
        return Cost(provider_micros=provider, billed_micros=billed, margin_bps=margin_bps)
    return Cost(provider_micros=provider, billed_micros=apply_margin(exact, margin_bps), margin_bps=margin_bps)


def bound_cost(model: ModelEntry, input_tokens: int, output_tokens: int, margin_bps: int) -> int:
    """The most a call with at most these token counts can be billed (the hold)."""
    input_price = max(model.input_micros_per_m, model.cache_write_micros_per_m, model.cached_input_micros_per_m)
    exact = input_tokens * input_price + output_tokens * model.output_micros_per_m
    return apply_margin(exact, margin_bps)

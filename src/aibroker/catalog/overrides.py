"""Writing catalog overrides (the `model_overrides` table): validation, upsert, delete, views.

Shared by `aibroker catalog ...` and the admin routes `/api/admin/catalog/...`. Prices come in
as USD per 1M tokens (decimal strings) and are stored as integer micro-units per 1M tokens,
like the packaged catalog. An override replaces the whole row: a field left out falls back to
the packaged value (or, for a model the catalog does not list, to its defaults)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.catalog.registry import ModelEntry
from aibroker.errors import InvalidRequest, NotFound
from aibroker.kit.money import format_micros, price_to_micros
from aibroker.models import ModelOverride

CAPABILITIES = frozenset({"tools", "vision", "json", "streaming", "reasoning", "images", "audio"})
MAX_PRICE_PER_M = Decimal(1_000_000)  # USD per 1M tokens: far above any real price, far below overflow
MAX_TOKENS = 100_000_000


@dataclass(frozen=True, slots=True)
class OverrideRequest:
    """What an operator asks for; None leaves the packaged value."""

    input_per_1m: Any = None
    output_per_1m: Any = None
    cached_input_per_1m: Any = None
    context_length: int | None = None
    max_output_tokens: int | None = None
    capabilities: list[str] | None = None
    enabled: bool = True


class UnknownProvider(NotFound):
    def __init__(self, provider: str, known: set[str]) -> None:
        super().__init__(
            f"Unknown provider '{provider}'. Known providers: {', '.join(sorted(known))} "
            "(add a custom one with AIBROKER_EXTRA_PROVIDERS).",
            param="provider", code="unknown_provider",
        )


def split_model_id(model_id: str, known_providers: set[str]) -> tuple[str, str]:
    provider, _, name = (model_id or "").partition("/")
    if not provider or not name:
        raise InvalidRequest(f"'{model_id}' is not a model id: use provider/model, e.g. groq/llama-3.3-70b-versatile.",
                             param="model", code="invalid_model_id")
    if provider not in known_providers:
        raise UnknownProvider(provider, known_providers)
    if len(model_id) > 200:
        raise InvalidRequest("A model id is at most 200 characters.", param="model")
    return provider, name


def _price(value: Any, field: str) -> int | None:
    if value is None:
        return None
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRequest(f"{field} must be a decimal number of USD per 1M tokens, not {value!r}.", param=field) from None
    if not price.is_finite() or price < 0:
        raise InvalidRequest(f"{field} must be zero or more (USD per 1M tokens), not {value}.", param=field)
    if price > MAX_PRICE_PER_M:
        raise InvalidRequest(f"{field} is at most {MAX_PRICE_PER_M} USD per 1M tokens.", param=field)
    return price_to_micros(price)


def _tokens(value: int | None, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS:
        raise InvalidRequest(f"{field} must be a whole number of tokens from 1 to {MAX_TOKENS:,}, not {value!r}.",
                             param=field)
    return value


def _capabilities(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = sorted(set(value) - CAPABILITIES)
    if unknown:
        raise InvalidRequest(f"Unknown capabilities {unknown}; use any of {sorted(CAPABILITIES)}.", param="capabilities")
    return sorted(set(value))


async def set_override(
    session: AsyncSession, model_id: str, request: OverrideRequest, *, listed: ModelEntry | None, known_providers: set[str]
) -> ModelOverride:
    """Create or replace the override of `model_id`. `listed` is the catalog's current entry
    (None: a new model, which needs both prices so it is never served free by omission)."""
    split_model_id(model_id, known_providers)
    row_values = {
        "input_micros_per_m": _price(request.input_per_1m, "input_per_1m"),
        "output_micros_per_m": _price(request.output_per_1m, "output_per_1m"),
        "cached_input_micros_per_m": _price(request.cached_input_per_1m, "cached_input_per_1m"),
        "context_length": _tokens(request.context_length, "context_length"),
        "max_output_tokens": _tokens(request.max_output_tokens, "max_output_tokens"),
        "capabilities": _capabilities(request.capabilities),
        "enabled": bool(request.enabled),
    }
    if listed is None and (row_values["input_micros_per_m"] is None or row_values["output_micros_per_m"] is None):
        raise InvalidRequest(
            f"The catalog does not list '{model_id}': give both input_per_1m and output_per_1m "
            "(0 is allowed) so it is never served free by omission.", param="input_per_1m", code="price_required",
        )
    row = await session.get(ModelOverride, model_id)
    if row is None:
        row = ModelOverride(id=model_id)
        session.add(row)
    for attr, value in row_values.items():
        setattr(row, attr, value)
    await session.flush()
    return row


async def delete_override(session: AsyncSession, model_id: str) -> None:
    row = await session.get(ModelOverride, model_id)
    if row is None:
        raise NotFound(f"There is no catalog override for '{model_id}'.", param="model", code="override_not_found")
    await session.delete(row)
    await session.flush()


async def overrides_by_id(session: AsyncSession) -> dict[str, ModelOverride]:
    return {row.id: row for row in (await session.scalars(select(ModelOverride))).all()}


def _usd(micros_per_m: int) -> str:
    return format_micros(micros_per_m)


def entry_view(entry: ModelEntry, *, source: str) -> dict[str, Any]:
    """One effective catalog entry; prices as USD per 1M tokens (strings, exact)."""
    return {
        "id": entry.id,
        "provider": entry.provider,
        "model": entry.name,
        "kind": entry.kind,
        "input_per_1m": _usd(entry.input_micros_per_m),
        "output_per_1m": _usd(entry.output_micros_per_m),
        "cached_input_per_1m": _usd(entry.cached_input_micros_per_m),
        "context_length": entry.context_length,
        "max_output_tokens": entry.max_output_tokens,
        "capabilities": sorted(entry.capabilities),
        "enabled": entry.enabled,
        "source": source,  # packaged | discovered | override
    }

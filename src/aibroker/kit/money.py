"""Money as integer micro-units (1 USD = 1,000,000). No floats anywhere."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation

MICROS_PER_UNIT = 1_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000  # catalog prices are per 1M tokens
BPS = 10_000


def to_micros(amount: str | int | Decimal) -> int:
    """Parse a decimal amount ("12.5") into micro-units; rejects fractions of a micro."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {amount!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    micros = value * MICROS_PER_UNIT
    if micros != micros.to_integral_value():
        raise ValueError(f"amount {amount} has more than 6 decimal places")
    return int(micros)


def format_micros(micros: int) -> str:
    """Micro-units as a decimal string with 6 places ("1.250000")."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_UNIT)
    return f"{sign}{whole}.{frac:06d}"


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def price_to_micros(price_per_million: str | int | Decimal | None) -> int:
    """A catalog price ("0.15" USD per 1M) as micro-units per 1M tokens (150000)."""
    if price_per_million is None:
        return 0
    value = Decimal(str(price_per_million)) * MICROS_PER_UNIT
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def apply_margin(exact_cost: int, margin_bps: int) -> int:
    """Billed micros from an exact cost in micro-micros (micros x 1e6), rounded up once."""
    return ceil_div(exact_cost * (BPS + margin_bps), BPS * TOKENS_PER_PRICE_UNIT)

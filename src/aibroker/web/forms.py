"""Reading console forms: text fields with bounds, amounts of money, optional integers.
A bad value is a FormError (the page shows it); nothing here trusts the browser's checks."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from starlette.datastructures import FormData

from aibroker.kit.money import to_micros


class FormError(ValueError):
    """A field the user must correct; the message names it."""


def text(form: FormData, name: str, *, max_length: int = 200, required: bool = False, label: str | None = None) -> str | None:
    value = form.get(name)
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        if required:
            raise FormError(f"{label or name} is required.")
        return None
    if len(value) > max_length:
        raise FormError(f"{label or name} is at most {max_length} characters.")
    return value


def integer(form: FormData, name: str, *, low: int = 1, high: int = 2**31 - 1, label: str | None = None) -> int | None:
    raw = text(form, name, max_length=20, label=label)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise FormError(f"{label or name} must be a whole number.") from None
    if not low <= value <= high:
        raise FormError(f"{label or name} must be between {low:,} and {high:,}.")
    return value


def amount(form: FormData, name: str, *, label: str | None = None, required: bool = True,
           high_micros: int = 10**15) -> tuple[Decimal, int] | None:
    """A money amount in the wallet currency ("20", "12.50"): (decimal, micros)."""
    raw = text(form, name, max_length=20, required=required, label=label)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
        if not value.is_finite() or value < 0:
            raise InvalidOperation
        micros = to_micros(value)
    except (InvalidOperation, ValueError):
        raise FormError(f"{label or name} must be an amount such as 20 or 12.50.") from None
    if micros > high_micros:
        raise FormError(f"{label or name} is too large.")
    return value, micros

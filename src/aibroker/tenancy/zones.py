"""Organization time zones: IANA names, checked when written."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from aibroker.errors import InvalidRequest


def valid_timezone(name: str) -> str:
    """`name` when it is an IANA zone this system knows, else 400 `invalid_timezone`."""
    name = name.strip()
    if name == "UTC" or name in available_timezones():
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise InvalidRequest(f"'{name[:64]}' is not a known IANA time zone (e.g. UTC, America/Sao_Paulo).",
                         param="timezone", code="invalid_timezone")

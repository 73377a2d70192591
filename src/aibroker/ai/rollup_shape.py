"""What one usage record adds to its hourly rollup: the bucket (an hour of the
organization's time zone), the measures, and the latency histogram bin.

The histogram has LATENCY_BINS bins, each 2^(1/4) wider than the one before (quarter
octaves): bin 0 holds 0 ms, bin i >= 1 holds [ceil(2^((i-1)/4)), ceil(2^(i/4))) ms, the
last bin everything from ~185 s up. Reporting a bin's geometric midpoint puts a
percentile within 2^(1/8) - 1 ≈ 9 % of the exact value (integer milliseconds below
~10 ms are exact: each bin holds one value).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LATENCY_BINS = 72
# Lower bound (integer ms) of each bin from 1 on; bins whose bound repeats are never hit.
_LOWER = [math.ceil(2 ** ((i - 1) / 4)) for i in range(1, LATENCY_BINS)]
HIST_COLUMNS = [f"lat_{i:02d}" for i in range(LATENCY_BINS)]

MEASURES = (
    "requests", "errors", "refused", "failed_attempts", "cache_hits", "input_tokens", "output_tokens",
    "cached_tokens", "cache_saved_micros", "provider_cost_micros", "billed_cost_micros", "latency_ms_sum", "latency_count",
)
# The measures of the per-organization money cube (revenue, cost, margin, savings per organization).
MONEY_MEASURES = ("requests", "errors", "refused", "cache_hits", "cache_saved_micros", "provider_cost_micros",
                  "billed_cost_micros")
ANSWERED = ("success", "partial")


def latency_bin(ms: int) -> int:
    if ms <= 0:
        return 0
    return bisect.bisect_right(_LOWER, ms)


def bin_bounds(index: int) -> tuple[int, int]:
    """Integer ms range [lo, hi] a bin holds (the last bin's hi is its lo x 2^(1/4))."""
    if index == 0:
        return 0, 0
    lo = _LOWER[index - 1]
    hi = _LOWER[index] - 1 if index < LATENCY_BINS - 1 else math.ceil(lo * 2 ** 0.25)
    return lo, max(lo, hi)


def bin_value(index: int) -> int:
    lo, hi = bin_bounds(index)
    return round(math.sqrt(lo * hi)) if lo else 0


@lru_cache(maxsize=1024)
def zone(name: str | None) -> dt.tzinfo:
    try:
        return ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def bucket_of(created_at: dt.datetime, tz: dt.tzinfo) -> tuple[dt.datetime, str]:
    """(start of the local hour as a UTC instant, the local date) of an instant."""
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=dt.UTC)
    local = created_at.astimezone(tz)
    hour = local.replace(minute=0, second=0, microsecond=0)
    return hour.astimezone(dt.UTC), local.date().isoformat()


def utc_hour(created_at: dt.datetime) -> dt.datetime:
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=dt.UTC)
    return created_at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def contribution(row: dict[str, Any]) -> tuple[int, ...]:
    """The measures one usage record adds, in MEASURES order. A failed upstream attempt (status
    error with an attempt number) is not a request of its own: the request's final record is."""
    status = row.get("status")
    failed_attempt = status == "error" and (row.get("attempt") or 0) >= 1
    cached = bool(row.get("cached"))
    answered = status in ANSWERED and not failed_attempt
    hit = cached and answered
    return (
        0 if failed_attempt else 1,  # requests
        int(status == "error" and not failed_attempt),  # errors
        int(status == "refused"),  # refused
        int(failed_attempt),  # failed_attempts
        int(hit),  # cache_hits
        row.get("input_tokens") or 0,
        row.get("output_tokens") or 0,
        row.get("cached_tokens") or 0,
        (row.get("cache_saved_micros") or 0) if hit else 0,
        row.get("provider_cost_micros") or 0,
        row.get("billed_cost_micros") or 0,
        (row.get("latency_ms") or 0) if answered else 0,  # latency_ms_sum
        int(answered),  # latency_count
    )

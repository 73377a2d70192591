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

DIMENSIONS = ("organization_id", "bucket_start", "model", "provider", "feature", "user_id", "api_key_id")
MEASURES = (
    "requests", "errors", "refused", "failed_attempts", "cache_hits", "input_tokens", "output_tokens",
    "cached_tokens", "cache_hit_input_tokens", "cache_hit_output_tokens", "cache_hit_billed_micros",
    "provider_cost_micros", "billed_cost_micros", "latency_ms_sum", "latency_count",
)
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


def contribution(row: dict[str, Any]) -> dict[str, int]:
    """The measures one usage record adds. A failed upstream attempt (status error with an
    attempt number) is not a request of its own: the request's final record is."""
    status = row.get("status")
    failed_attempt = status == "error" and int(row.get("attempt") or 0) >= 1
    cached = bool(row.get("cached"))
    answered = status in ANSWERED and not failed_attempt
    billed = int(row.get("billed_cost_micros") or 0)
    tokens_in, tokens_out = int(row.get("input_tokens") or 0), int(row.get("output_tokens") or 0)
    return {
        "requests": 0 if failed_attempt else 1,
        "errors": int(status == "error" and not failed_attempt),
        "refused": int(status == "refused"),
        "failed_attempts": int(failed_attempt),
        "cache_hits": int(cached and answered),
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cached_tokens": int(row.get("cached_tokens") or 0),
        "cache_hit_input_tokens": tokens_in if cached and answered else 0,
        "cache_hit_output_tokens": tokens_out if cached and answered else 0,
        "cache_hit_billed_micros": billed if cached and answered else 0,
        "provider_cost_micros": int(row.get("provider_cost_micros") or 0),
        "billed_cost_micros": billed,
        "latency_ms_sum": int(row.get("latency_ms") or 0) if answered else 0,
        "latency_count": int(answered),
    }


def rollup_key(row: dict[str, Any], tz: dt.tzinfo) -> tuple[tuple[Any, ...], str]:
    start, local_date = bucket_of(row["created_at"], tz)
    key = (
        row["organization_id"], start, row.get("model") or "", row.get("provider") or "", row.get("feature") or "",
        row.get("user_id") or "", row.get("api_key_id") or "",
    )
    return key, local_date


def aggregate(rows: list[dict[str, Any]], zones: dict[str, dt.tzinfo]) -> list[dict[str, Any]]:
    """The rollup increments of a batch of usage records, one per key, sorted by key (every
    writer takes row locks in the same order, so two batches never deadlock)."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key, local_date = rollup_key(row, zones.get(row["organization_id"], dt.UTC))
        add = contribution(row)
        target = merged.get(key)
        if target is None:
            target = merged[key] = {**dict(zip(DIMENSIONS, key, strict=True)), "local_date": local_date,
                                    **dict.fromkeys(MEASURES, 0), **dict.fromkeys(HIST_COLUMNS, 0)}
        for name, value in add.items():
            target[name] += value
        if add["latency_count"]:
            target[HIST_COLUMNS[latency_bin(int(row.get("latency_ms") or 0))]] += 1
    return [merged[k] for k in sorted(merged, key=_sort_key)]


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return (key[0], key[1].isoformat(), *key[2:])

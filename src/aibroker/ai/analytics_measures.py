"""Summed rollup measures and what is derived from them: rates, averages, percentiles."""

from __future__ import annotations

from typing import Any

from aibroker.ai.rollup_shape import HIST_COLUMNS, MEASURES, bin_value

PERCENTILES = (("latency_ms_p50", 50), ("latency_ms_p95", 95), ("latency_ms_p99", 99))


class Measures:
    __slots__ = ("values", "hist")

    def __init__(self, values: dict[str, int] | None = None, hist: list[int] | None = None) -> None:
        self.values = values or dict.fromkeys(MEASURES, 0)
        self.hist = hist or [0] * len(HIST_COLUMNS)

    @classmethod
    def from_row(cls, row: Any) -> Measures:
        data = row._mapping  # a narrow query sums some measures only: the rest are 0
        return cls({m: int(data.get(m) or 0) for m in MEASURES}, [int(data.get(h) or 0) for h in HIST_COLUMNS])

    def add(self, other: Measures) -> None:
        for key, value in other.values.items():
            self.values[key] += value
        self.hist = [a + b for a, b in zip(self.hist, other.hist, strict=True)]

    def percentile(self, q: int) -> int | None:
        """Nearest rank over the histogram: the value of the bin holding rank ceil(q% x n)."""
        total = sum(self.hist)
        if not total:
            return None
        rank = -(-q * total // 100)
        seen = 0
        for index, count in enumerate(self.hist):
            seen += count
            if seen >= rank:
                return bin_value(index)
        return bin_value(len(self.hist) - 1)

    def render(self) -> dict[str, Any]:
        v = self.values
        requests, answered = v["requests"], v["latency_count"]
        out: dict[str, Any] = {
            "requests": requests,
            "errors": v["errors"],
            "refused": v["refused"],
            "failed_attempts": v["failed_attempts"],
            "error_rate": round(v["errors"] / requests, 4) if requests else 0.0,
            "cost_micros": v["billed_cost_micros"],
            "provider_cost_micros": v["provider_cost_micros"],
            "margin_micros": v["billed_cost_micros"] - v["provider_cost_micros"],
            "input_tokens": v["input_tokens"],
            "output_tokens": v["output_tokens"],
            "cached_tokens": v["cached_tokens"],
            "cache_hits": v["cache_hits"],
            "cache_hit_rate": round(v["cache_hits"] / answered, 4) if answered else 0.0,
            "cache_savings_micros": v["cache_saved_micros"],
            "latency_ms_avg": round(v["latency_ms_sum"] / answered, 1) if answered else None,
        }
        for name, q in PERCENTILES:
            out[name] = self.percentile(q)
        return out

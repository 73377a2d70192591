"""Prometheus metrics. Label values are bounded: endpoints, providers, statuses, error types."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

REQUESTS = Counter("aibroker_requests_total", "AI requests answered", ["endpoint", "status"])
REQUEST_SECONDS = Histogram(
    "aibroker_request_seconds", "Time to answer an AI request (to first byte for streams)", ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_SECONDS = Histogram(
    "aibroker_upstream_seconds", "Time spent in successful upstream calls", ["provider"], buckets=LATENCY_BUCKETS
)
TOKENS = Counter("aibroker_tokens_total", "Tokens processed", ["provider", "direction"])
COST_MICROS = Counter("aibroker_billed_cost_micros_total", "Billed cost in micro-units", ["provider"])
PROVIDER_COST_MICROS = Counter("aibroker_provider_cost_micros_total", "Provider cost in micro-units", ["provider"])
UPSTREAM_ERRORS = Counter("aibroker_upstream_errors_total", "Failed upstream attempts", ["provider", "type"])
CACHE_HITS = Counter("aibroker_cache_hits_total", "Response cache hits", ["kind"])
CACHE_MISSES = Counter("aibroker_cache_misses_total", "Response cache misses (cacheable requests not found)", ["kind"])
CACHE_SAVED_MICROS = Counter(
    "aibroker_cache_saved_micros_total", "What cache hits would have been billed at full price, minus what they were"
)
IN_FLIGHT = Gauge("aibroker_http_requests_in_flight", "HTTP requests being served by this process")


@lru_cache(maxsize=4096)
def child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, looked up once: prometheus_client validates and locks on every
    call, a cost the hot path pays several times per request. Label values here are bounded
    (endpoints, statuses, providers, cache kinds), and so is the cache."""
    return metric.labels(*labels)

"""Usage records written through the money writer's own batch (the real write path, with
debits), at chosen instants, and the raw sums the analytics must equal."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from aibroker.billing.batch import Settle, apply_batch
from aibroker.kit.ids import new_id
from aibroker.models import LedgerEntry, Organization, UsageRecord

MODELS = (("openai", "openai/gpt-4o-mini"), ("anthropic", "anthropic/claude-3-5-haiku"), ("mock", "mock-chat"))
UTC = dt.UTC


def set_timezone(engine: Any, org_id: str, tz: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(Organization).where(Organization.id == org_id).values(timezone=tz))


def record(org_id: str, at: dt.datetime, rng: random.Random, **over: Any) -> dict[str, Any]:
    provider, model = rng.choice(MODELS)
    status = rng.choices(["success", "error", "refused", "partial"], [80, 8, 4, 8])[0]
    attempt = rng.choice([1, 2]) if status == "success" else 0
    cached = status == "success" and rng.random() < 0.15
    answered = status in ("success", "partial")
    cost = rng.randint(1, 5000) if answered and not cached else 0
    row = {
        "id": new_id("use"), "request_id": new_id("req"), "organization_id": org_id,
        "api_key_id": rng.choice(["key_a", "key_b", None]), "user_id": rng.choice(["u1", "u2", "u3", None]),
        "user_name": None, "feature": rng.choice(["CHAT_RESPONSE", "SUMMARY", None]), "endpoint": "chat",
        "provider": provider, "model": model,
        "input_tokens": rng.randint(1, 900) if answered else 0, "output_tokens": rng.randint(0, 400) if answered else 0,
        "cached_tokens": 0, "provider_cost_micros": cost, "billed_cost_micros": 0, "margin_bps": 3000,
        "latency_ms": rng.randint(1, 9000) if answered else rng.randint(0, 20), "upstream_latency_ms": 0,
        "status": status, "error_type": None, "error_message": None, "attempt": attempt,
        "streamed": False, "cached": cached, "byok": False, "created_at": at,
        "cache_saved_micros": rng.randint(1, 3000) if cached else 0,
    }
    row.update(over)
    return row


def failed_attempt(org_id: str, at: dt.datetime, rng: random.Random) -> dict[str, Any]:
    """An upstream attempt that failed before a fallback: not a request of its own."""
    return record(org_id, at, rng, status="error", attempt=1, latency_ms=5, provider_cost_micros=0,
                  input_tokens=0, output_tokens=0, cached=False)


def write(engine: Any, rows: Iterable[dict[str, Any]], batch: int = 37) -> None:
    """Settle each row with a debit of cost x 1.3 (rounded up), in batches, as the writer does."""
    rows = list(rows)
    for start in range(0, len(rows), batch):
        ops = [Settle(r["organization_id"], r, debit=-(-r["provider_cost_micros"] * 13 // 10)) for r in rows[start:start + batch]]
        with engine.begin() as conn:
            apply_batch(conn, ops)


def stored(engine: Any, org_ids: list[str] | None = None) -> list[UsageRecord]:
    with engine.connect() as conn:
        query = select(UsageRecord)
        if org_ids is not None:
            query = query.where(UsageRecord.organization_id.in_(org_ids))
        return list(conn.execute(query))


def debits(engine: Any, org_id: str) -> int:
    with engine.connect() as conn:
        amounts = conn.execute(select(LedgerEntry.amount_micros).where(LedgerEntry.organization_id == org_id,
                                                                        LedgerEntry.kind == "debit")).scalars()
        return -sum(amounts)


def aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def sums(rows: list[Any]) -> dict[str, int]:
    """The totals, straight from the records (the definitions the analytics document)."""
    final = [r for r in rows if not (r.status == "error" and r.attempt >= 1)]
    answered = [r for r in final if r.status in ("success", "partial")]
    return {
        "requests": len(final),
        "errors": sum(r.status == "error" for r in final),
        "refused": sum(r.status == "refused" for r in final),
        "failed_attempts": len(rows) - len(final),
        "cost_micros": sum(r.billed_cost_micros for r in rows),
        "provider_cost_micros": sum(r.provider_cost_micros for r in rows),
        "input_tokens": sum(r.input_tokens for r in rows),
        "output_tokens": sum(r.output_tokens for r in rows),
        "cache_hits": sum(bool(r.cached) for r in answered),
        "cache_savings_micros": sum(r.cache_saved_micros for r in answered if r.cached),
    }


def exact_percentile(rows: list[Any], q: int) -> int | None:
    values = sorted(r.latency_ms for r in rows if r.status in ("success", "partial"))
    if not values:
        return None
    return values[-(-q * len(values) // 100) - 1]


def grouped(rows: list[Any], key: Callable[[Any], Any]) -> dict[Any, dict[str, int]]:
    parts: dict[Any, list[Any]] = defaultdict(list)
    for r in rows:
        parts[key(r)].append(r)
    return {k: sums(v) for k, v in parts.items()}


def local_day(tz: str) -> Callable[[Any], str]:
    return lambda r: aware(r.created_at).astimezone(ZoneInfo(tz)).date().isoformat()


def local_hour(tz: str) -> Callable[[Any], str]:
    zone = ZoneInfo(tz)
    return lambda r: aware(r.created_at).astimezone(zone).replace(minute=0, second=0, microsecond=0).isoformat()

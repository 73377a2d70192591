"""bench/analytics.py's data: a month of usage records for many organizations (one large,
many small, Zipf-like), bulk-loaded (COPY on PostgreSQL, executemany on SQLite) with their
rollup cubes computed by the write path's own aggregation; and the raw-records query the
rollups are measured against."""

from __future__ import annotations

import datetime as dt
import operator
import random
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text

from aibroker.ai.rollup_cubes import CUBES, PLATFORM, aggregate

MONTH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
MONTH_END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
SECONDS = int((MONTH_END - MONTH).total_seconds())
MODELS = [("openai", "openai/gpt-4o-mini"), ("openai", "openai/gpt-4o"), ("anthropic", "anthropic/claude-3-5-haiku"),
          ("anthropic", "anthropic/claude-sonnet-4"), ("google", "google/gemini-2.0-flash"), ("mock", "mock-chat")]
FEATURES = ["CHAT_RESPONSE", "SUMMARY", "SENTIMENT"]
RECORD_COLUMNS = ("id", "request_id", "organization_id", "api_key_id", "user_id", "user_name", "feature", "endpoint",
                  "provider", "model", "input_tokens", "output_tokens", "cached_tokens", "provider_cost_micros",
                  "billed_cost_micros", "margin_bps", "latency_ms", "upstream_latency_ms", "status", "error_type",
                  "error_message", "attempt", "streamed", "cached", "byok", "created_at")
_RECORD_ROW = operator.itemgetter(*RECORD_COLUMNS)


def org_sizes(records: int, orgs: int) -> list[int]:
    """The largest organization has 10% of the records; the rest follow 1/rank (Zipf)."""
    big = records // 10
    weights = [1 / rank for rank in range(1, orgs)]
    total = sum(weights)
    sizes = [big] + [max(1, int((records - big) * w / total)) for w in weights]
    sizes[0] += records - sum(sizes)
    return sizes


def org_records(index: int, org_id: str, count: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    users = [f"u{i}" for i in range(1 + min(50, count // 20))]
    keys = [f"key_{index}_{i}" for i in range(1 + (count > 1000))]
    for n in range(count):
        feature = FEATURES[min(2, int(rng.paretovariate(2)) - 1)]
        provider, model = MODELS[FEATURES.index(feature) * 2 + (rng.random() < 0.2)]
        status = "success" if rng.random() < 0.95 else rng.choice(("error", "refused", "partial"))
        answered = status in ("success", "partial")
        cached = answered and rng.random() < 0.1
        cost = rng.randint(5, 4000) if answered and not cached else 0
        yield {
            "id": f"use_{index:05d}_{n:08d}", "request_id": f"req_{index:05d}_{n:08d}", "organization_id": org_id,
            "api_key_id": keys[n % len(keys)], "user_id": users[min(len(users) - 1, int(rng.expovariate(0.3)))],
            "user_name": None, "feature": feature, "endpoint": "chat", "provider": provider, "model": model,
            "input_tokens": rng.randint(10, 2000) if answered else 0, "output_tokens": rng.randint(1, 800) if answered else 0,
            "cached_tokens": 0, "provider_cost_micros": cost, "billed_cost_micros": -(-cost * 13 // 10), "margin_bps": 3000,
            "latency_ms": int(rng.lognormvariate(6.3, 0.8)) if answered else rng.randint(0, 30), "upstream_latency_ms": 0,
            "status": status, "error_type": None, "error_message": None, "attempt": 1 if answered else 0,
            "streamed": False, "cached": cached, "byok": False,
            "created_at": MONTH + dt.timedelta(seconds=rng.randrange(SECONDS), microseconds=rng.randrange(10**6)),
        }


def load(engine: Any, records: int, orgs: int, seed: int = 15) -> dict[str, Any]:
    """Organizations, usage records and their rollup cubes; returns sizes (rows per cube) and timings."""
    rng = random.Random(seed)
    sizes = org_sizes(records, orgs)
    now = dt.datetime.now(dt.UTC)
    org_rows = [{"id": f"org_{i:05d}", "name": f"Org {i}", "slug": f"org-{i:05d}", "plan": "free", "status": "active",
                 "timezone": "UTC", "cache_enabled": True, "allow_code_auth": False, "created_at": now} for i in range(orgs)]
    started = time.perf_counter()
    cube_rows = dict.fromkeys((c.table for c in CUBES), 0)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organizations (id, name, slug, plan, status, timezone, cache_enabled, allow_code_auth,"
                          " created_at) VALUES (:id, :name, :slug, :plan, :status, :timezone, :cache_enabled,"
                          " :allow_code_auth, :created_at)"), org_rows)
        writer = _Bulk(conn)
        zones = {r["id"]: dt.UTC for r in org_rows}
        platform: dict[tuple[Any, ...], dict[str, Any]] = {}
        for index, size in enumerate(sizes):
            rows = list(org_records(index, org_rows[index]["id"], size, rng))
            writer.add("usage_records", RECORD_COLUMNS, [_RECORD_ROW(r) for r in rows])
            for cube, increments in aggregate(rows, zones).items():
                if cube is PLATFORM:  # keyed across organizations: merged in memory, written last
                    _merge(platform, cube, increments)
                    continue
                cube_rows[cube.table] += len(increments)
                writer.add(cube.table, cube.columns, [tuple(i) for i in increments])
            del rows
        cube_rows[PLATFORM.table] = len(platform)
        writer.add(PLATFORM.table, PLATFORM.columns, [tuple(platform[k]) for k in sorted(platform)])
        writer.flush()
    loaded = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE usage_records"))
            for cube in CUBES:
                conn.execute(text(f"VACUUM ANALYZE {cube.table}"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return {"records": records, "organizations": orgs, "rollup_rows": sum(cube_rows.values()), "cube_rows": cube_rows,
            "largest": sizes[0],
            "load_seconds": round(loaded, 1)}


def _merge(into: dict[tuple[Any, ...], list[Any]], cube: Any, increments: list[list[Any]]) -> None:
    start = len(cube.keys) + len(cube.extra)
    for inc in increments:
        key = tuple(inc[:len(cube.keys)])
        have = into.get(key)
        if have is None:
            into[key] = inc
        else:
            for i in range(start, len(inc)):
                have[i] += inc[i]


class _Bulk:
    """COPY (PostgreSQL) or executemany (SQLite), in chunks."""

    CHUNK = 50_000

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self.pending: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {}

    def add(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        entry = self.pending.setdefault(table, (columns, []))
        entry[1].extend(rows)
        if len(entry[1]) >= self.CHUNK:
            self._write(table)

    def flush(self) -> None:
        for table in list(self.pending):
            self._write(table)

    def _write(self, table: str) -> None:
        columns, rows = self.pending.pop(table)
        if not rows:
            return
        names = ", ".join(f'"{c}"' for c in columns)
        raw = self.conn.connection.dbapi_connection
        cursor = raw.cursor()
        if self.pg:
            with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            stamp = next((columns.index(c) for c in ("created_at", "bucket_start") if c in columns), None)
            if stamp is not None:
                rows = [(*r[:stamp], r[stamp].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[stamp + 1:]) for r in rows]
            cursor.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)


def raw_report(conn: Any, org_id: str | None, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """The analytics' totals, daily series, percentiles and top users straight from the records."""
    pg = conn.dialect.name == "postgresql"
    final = "NOT (status = 'error' AND attempt >= 1)"
    answered = "status IN ('success', 'partial')"
    where = "created_at >= :start AND created_at < :end" + (" AND organization_id = :org" if org_id else "")
    params: dict[str, Any] = {"start": start, "end": end, "org": org_id}
    if not pg:
        params.update(start=start.strftime("%Y-%m-%d %H:%M:%S"), end=end.strftime("%Y-%m-%d %H:%M:%S"))
    sums = (f"SUM(CASE WHEN {final} THEN 1 ELSE 0 END) AS requests, SUM(CASE WHEN status = 'error' AND attempt = 0 THEN 1 ELSE 0 END)"
            f" AS errors, SUM(billed_cost_micros) AS cost, SUM(provider_cost_micros) AS provider_cost, SUM(input_tokens),"
            f" SUM(output_tokens), SUM(CASE WHEN cached AND {answered} THEN 1 ELSE 0 END)")
    totals = conn.execute(text(f"SELECT {sums} FROM usage_records WHERE {where}"), params).one()
    day = "date_trunc('day', created_at)" if pg else "substr(created_at, 1, 10)"
    series = conn.execute(text(f"SELECT {day} AS d, {sums} FROM usage_records WHERE {where} GROUP BY d ORDER BY d"), params).all()
    users = conn.execute(text(f"SELECT organization_id, user_id, SUM(billed_cost_micros) AS c FROM usage_records WHERE {where}"
                              f" GROUP BY organization_id, user_id ORDER BY c DESC LIMIT 10"), params).all()
    if pg:
        pct = conn.execute(text("SELECT percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms)"
                                f" FROM usage_records WHERE {where} AND {answered}"), params).scalar()
    else:
        count = conn.execute(text(f"SELECT COUNT(*) FROM usage_records WHERE {where} AND {answered}"), params).scalar() or 0
        pct = [conn.execute(text(f"SELECT latency_ms FROM usage_records WHERE {where} AND {answered} ORDER BY latency_ms"
                                 " LIMIT 1 OFFSET :k"), {**params, "k": max(0, -(-q * count // 100) - 1)}).scalar()
               for q in (50, 95, 99)]
    return {"requests": int(totals[0] or 0), "cost_micros": int(totals[2] or 0), "series": len(series),
            "percentiles": list(pct or []), "top_users": len(users)}


def usage_row_for(org_id: str, n: int, i: int) -> dict[str, Any]:
    """A settled request's usage record, as the gateway builds it (write-path bench)."""
    return {
        "id": f"use_w{n:07d}_{i:03d}", "request_id": f"req_w{n:07d}_{i:03d}", "organization_id": org_id,
        "api_key_id": "key_w", "user_id": f"u{i % 7}", "user_name": None, "feature": FEATURES[i % 3], "endpoint": "chat",
        "provider": "openai", "model": "openai/gpt-4o-mini", "input_tokens": 120, "output_tokens": 40, "cached_tokens": 0,
        "provider_cost_micros": 10, "billed_cost_micros": 0, "margin_bps": 3000, "latency_ms": 200 + i,
        "upstream_latency_ms": 180, "status": "success", "error_type": None, "error_message": None, "attempt": 1,
        "streamed": False, "cached": False, "byok": False, "created_at": dt.datetime.now(dt.UTC),
    }

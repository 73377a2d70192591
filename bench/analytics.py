#!/usr/bin/env python3
"""GET /api/ai/analytics over the rollup cubes vs the same answer computed from the raw
usage records, for a month of N records across M organizations; and what maintaining the
rollups adds to each request's write (the money writer's settle, and a whole request).

    .venv/bin/python bench/analytics.py                       # 200k records, SQLite, short
    .venv/bin/python bench/analytics.py --records 1000000 --records 10000000 \\
        --pg-url postgresql://postgres@127.0.0.1:5432/aibroker_bench

Writes the report to bench/results/analytics.md (and prints it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from sqlalchemy import text  # noqa: E402

from _analytics_data import MONTH, MONTH_END, load, raw_report  # noqa: E402
from aibroker.ai.analytics_service import AnalyticsService  # noqa: E402
from aibroker.ai.rollup_writer import RollupWriter  # noqa: E402
from aibroker.db import Database, make_sync_engine  # noqa: E402
from aibroker.migrations.runner import upgrade  # noqa: E402

RESULTS = BENCH_DIR / "results" / "analytics.md"


def _fresh_database(kind: str, tmp: Path, pg_url: str | None) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'analytics.db'}"
    import psycopg
    from sqlalchemy.engine import make_url

    assert pg_url, "--pg-url is needed for PostgreSQL"
    parsed = make_url(pg_url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}"')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')
    return pg_url


def _timed(fn: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, result


async def _rollup_query(url: str, org_id: str | None, repeat: int) -> tuple[float, dict[str, Any]]:
    db = Database(url)
    try:
        times, report = [], {}
        for n in range(repeat + 1):  # the first run compiles statements and connects: not counted
            started = time.perf_counter()
            async with db.sessions() as session:
                report = await AnalyticsService(session).report(
                    organization_id=org_id, tz_name="UTC", start=MONTH, end=MONTH_END, group_by="day", limit=100,
                    platform=org_id is None)
            if n:
                times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000, report
    finally:
        await db.dispose()


def query_bench(kind: str, url: str, records: int, orgs: int, repeat: int, sql_load: bool = False) -> list[dict[str, Any]]:
    engine = make_sync_engine(url)
    upgrade(url)
    if sql_load and kind == "postgresql":
        from _analytics_sql import load_sql

        sizes = load_sql(engine, records, orgs)
    else:
        sizes = load(engine, records, orgs)
    print(f"[bench] {kind}: loaded {sizes}", file=sys.stderr, flush=True)
    small = f"org_{min(orgs - 1, 500):05d}"
    rows = []
    for label, org in (("largest organization", "org_00000"), ("a small organization", small), ("platform, all organizations", None)):
        rollup_ms, report = asyncio.run(_rollup_query(url, org, repeat))
        with engine.connect() as conn:
            raw_report(conn, small, MONTH, MONTH_END)  # warm the connection and the statements
            raw_ms, raw = _timed(lambda conn=conn, org=org: raw_report(conn, org, MONTH, MONTH_END), max(1, repeat // 2))
        agree = report["totals"]["requests"] == raw["requests"] and report["totals"]["cost_micros"] == raw["cost_micros"]
        rows.append({"db": kind, "records": records, "orgs": orgs, "scope": label, "rollup_rows": sizes["rollup_rows"],
                     "cube_rows": sizes["cube_rows"],
                     "requests": raw["requests"], "rollup_ms": rollup_ms, "raw_ms": raw_ms, "agree": agree,
                     "load_s": sizes["load_seconds"]})
    engine.dispose()
    return rows


# -- write path -------------------------------------------------------------------------------


def write_bench(kind: str, url: str, rounds: int) -> list[dict[str, Any]]:
    """Settle ops (usage record + debit) through apply_batch, one per transaction (a quiet
    server) and 100 per transaction (a busy one), rollups on and off, interleaved."""
    from _analytics_data import usage_row_for
    from aibroker.billing.batch import PostEntry, Settle, apply_batch

    engine = make_sync_engine(url, immediate=True)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organizations (id, name, slug, plan, status, timezone, cache_enabled, allow_code_auth,"
                          " created_at) VALUES ('org_w', 'W', 'w', 'free', 'active', 'UTC', true, false, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO wallets (id, organization_id, balance_micros, held_micros, currency,"
                          " low_balance_threshold_micros, low_balance_alerted, created_at) VALUES"
                          " ('wal_w', 'org_w', 0, 0, 'USD', 0, false, CURRENT_TIMESTAMP)"))
    with engine.begin() as conn:
        apply_batch(conn, [PostEntry("org_w", "recharge", 10**15)])
    out = []
    serial = iter(range(10**9))
    for batch in (1, 100):
        timing: dict[bool, list[float]] = {True: [], False: []}
        for n in range(rounds):
            for enabled in (n % 2 == 0, n % 2 == 1):
                RollupWriter.enabled = enabled
                ops = [Settle("org_w", usage_row_for("org_w", next(serial), i), debit=13) for i in range(batch)]
                started = time.perf_counter()
                with engine.begin() as conn:
                    apply_batch(conn, ops)
                timing[enabled].append((time.perf_counter() - started) / batch * 1e6)
        RollupWriter.enabled = True
        on, off = statistics.median(timing[True]), statistics.median(timing[False])
        out.append({"db": kind, "what": f"settle, {batch} per transaction", "off_us": off, "on_us": on, "ratio": on / off})
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, action="append", help="usage records (repeat for several runs)")
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default=None)
    parser.add_argument("--pg-url", default=os.environ.get("AIBROKER_BENCH_DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sqlite-max-records", type=int, default=1_000_000,
                        help="SQLite runs skip larger --records (bulk loading SQLite is the slow part)")
    parser.add_argument("--write-rounds", type=int, default=300)
    parser.add_argument("--http-requests", type=int, default=300)
    parser.add_argument("--sql-load", action="store_true",
                        help="PostgreSQL: generate the records and build the cubes inside the database (fast for 10M)")
    parser.add_argument("--skip-write", action="store_true", help="only the read benchmark")
    parser.add_argument("--note", default="a shared machine (other engineers' work ran meanwhile)",
                        help="what the machine was doing, for the report")
    args = parser.parse_args()
    kinds = {"sqlite": ["sqlite"], "postgresql": ["postgresql"], "both": ["sqlite", "postgresql"]}[
        args.db or ("both" if args.pg_url else "sqlite")]
    records = args.records or [200_000]
    queries, writes, http = [], [], []
    for kind in kinds:
        for count in records:
            if kind == "sqlite" and count > args.sqlite_max_records:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                url = _fresh_database(kind, Path(tmp), args.pg_url)
                queries += query_bench(kind, url, count, args.orgs, args.repeat, args.sql_load)
                print(render(queries, [], [], args), file=sys.stderr, flush=True)  # so far, in case a later run fails
        if args.skip_write:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            url = _fresh_database(kind, Path(tmp), args.pg_url)
            upgrade(url)
            writes += write_bench(kind, url, args.write_rounds)
            from _analytics_http import http_bench

            http += http_bench(kind, url, args.http_requests)
    report = render(queries, writes, http, args)
    RESULTS.write_text(report)
    print(report)


def render(queries: list[dict[str, Any]], writes: list[dict[str, Any]], http: list[dict[str, Any]], args: Any) -> str:
    lines = [
        "# Analytics: rollups vs raw records, and what the rollups cost the write path", "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} ({os.cpu_count()} cores), {args.note}: "
        "read ratios, not absolute figures.",
        f"Command: `.venv/bin/python bench/analytics.py {' '.join(sys.argv[1:])}`", "",
        "## GET /api/ai/analytics for November (group_by=day): the service over the rollups vs SQL over the records", "",
        "The rollup figure is the whole report (totals with p50/p95/p99, the daily series, top users, projection; "
        "the platform view adds revenue per organization and provider). The raw figure is the totals, the daily "
        "series, the percentiles and top users straight from `usage_records` (indexed by organization and time). "
        "Rollup rows: all four cubes (ai/rollup_cubes.py); the per-cube counts follow the table.", "",
        "| db | records | orgs | rollup rows | scope | requests in scope | rollups ms | raw ms | raw / rollups | same totals |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for q in queries:
        lines.append(f"| {q['db']} | {q['records']:,} | {q['orgs']:,} | {q['rollup_rows']:,} | {q['scope']} | {q['requests']:,} "
                     f"| {q['rollup_ms']:.1f} | {q['raw_ms']:.1f} | {q['raw_ms'] / q['rollup_ms']:.1f}x | {'yes' if q['agree'] else 'NO'} |")
    seen = set()
    for q in queries:
        if (q["db"], q["records"]) not in seen:
            seen.add((q["db"], q["records"]))
            cubes = ", ".join(f"`{name}` {count:,}" for name, count in q["cube_rows"].items())
            lines.append(f"\n{q['db']}, {q['records']:,} records: {cubes}.")
    lines += ["", "## Write path: maintaining the rollups (same transaction as the usage record)", "",
              "| db | what | without rollups | with rollups | ratio |", "|---|---|---:|---:|---:|"]
    for w in writes:
        lines.append(f"| {w['db']} | {w['what']} | {w['off_us']:.0f} µs | {w['on_us']:.0f} µs | {w['ratio']:.2f} |")
    for r in http:
        lines.append(f"| {r['db']} | {r['what']} | {r['off_ms']:.2f} ms | {r['on_ms']:.2f} ms | {r['ratio']:.2f} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

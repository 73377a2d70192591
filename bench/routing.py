"""Hot-path cost of the routing matrix, per call, against the fresh-install DefaultRouter.

    .venv/bin/python bench/routing.py [--calls 20000] [--database-url postgresql://...]

A realistic configuration (20 features x 4 plans x 3 profiles, two providers per row,
plus group overrides on a quarter of the features) is loaded into a scratch database
(SQLite by default). Measured, in-process:

  * DefaultRouter.candidates                     (what a fresh install pays)
  * RoutingRouter.candidates, routed feature     (snapshot lookup, memoized resolution)
  * RoutingRouter.candidates, feature with group overrides (resolved per call: expiry)
  * RoutingRouter.candidates, unrouted feature   (falls through to the DefaultRouter)
  * limits check (RoutingLimits.admit): one indexed COUNT over usage_records holding
    ~100k rows, for a feature with daily/monthly limits (the only per-request query)

Prints a table (µs per call: mean and p50/p99 for the async path).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sqlalchemy import insert  # noqa: E402

from aibroker.catalog.service import Catalog  # noqa: E402
from aibroker.config import GatewaySettings  # noqa: E402
from aibroker.db import Database, make_sync_engine  # noqa: E402
from aibroker.gateway.context import CallContext  # noqa: E402
from aibroker.gateway.default_router import DefaultRouter  # noqa: E402
from aibroker.gateway.hooks import OpenAdmission  # noqa: E402
from aibroker.kit.ids import new_id  # noqa: E402
from aibroker.migrations.runner import upgrade  # noqa: E402
from aibroker.models import UsageRecord  # noqa: E402
from aibroker.routing.config_file import ConfigFile, apply  # noqa: E402
from aibroker.routing.router import RoutingLimits, RoutingRouter  # noqa: E402
from aibroker.routing.runtime import RoutingRuntime  # noqa: E402
from aibroker.tenancy.auth import Principal  # noqa: E402

PLANS = ["free", "starter", "professional", "enterprise"]
PROFILES = ["default", "usuaria", "admin"]
FEATURES = [f"feature_{i:02d}" for i in range(20)]


def config() -> ConfigFile:
    matrix = []
    for plan_no, plan in enumerate(PLANS):
        for profile in PROFILES:
            limits = {} if profile == "admin" else {"daily_limit": 50 * (plan_no + 1), "monthly_limit": 1000 * (plan_no + 1)}
            matrix.append({"plan": plan, "profile": profile, "features": FEATURES,
                           "providers": [{"provider": "mock", "model": "mock-chat"}, {"provider": "mock", "model": "mock-text"}], **limits})
    overrides = [{"group_key": "promo", "feature": f, "provider": "mock", "model": "mock-slow",
                  "valid_until": "2999-01-01T00:00:00Z"} for f in FEATURES[:5]]
    return ConfigFile.model_validate({
        "plans": PLANS, "profiles": PROFILES[1:],
        "providers": [{"slug": "mock", "default_model": "mock-chat"}],
        "features": [{"slug": f, "category": "analysis"} for f in FEATURES],
        "feature_providers": [{"feature": f, "provider": "mock", "model": "mock-chat", "weight": 2} for f in FEATURES],
        "matrix": matrix, "overrides": overrides,
    })


def seed_usage(url: str, org_id: str, rows: int) -> None:
    """~rows usage records over 40 organizations and the last 60 days (the COUNT's haystack)."""
    engine = make_sync_engine(url, pooled=False)
    now = dt.datetime.now(dt.UTC)
    base = {"endpoint": "chat", "provider": "mock", "model": "mock/mock-chat", "input_tokens": 1, "output_tokens": 1,
            "cached_tokens": 0, "provider_cost_micros": 1, "billed_cost_micros": 1, "margin_bps": 0, "latency_ms": 1,
            "upstream_latency_ms": 1, "status": "success", "attempt": 1, "streamed": False, "cached": False, "byok": False}
    with engine.begin() as conn:
        batch = []
        for i in range(rows):
            org = org_id if i % 40 == 0 else f"org_other_{i % 40}"
            batch.append({**base, "id": new_id("use"), "request_id": new_id("req"), "organization_id": org,
                          "feature": FEATURES[(i // 40) % len(FEATURES)], "created_at": now - dt.timedelta(minutes=(i * 7) % (60 * 24 * 60))})
            if len(batch) == 5000:
                conn.execute(insert(UsageRecord.__table__), batch)
                batch = []
        if batch:
            conn.execute(insert(UsageRecord.__table__), batch)
    engine.dispose()


async def default_session_roundtrip(db: Database) -> None:
    from sqlalchemy import text

    async with db.sessions() as session:
        await session.execute(text("SELECT 1"))


def per_call_us(fn, calls: int) -> float:
    for _ in range(min(1000, calls)):
        fn()
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


async def async_samples(fn, calls: int) -> list[float]:
    for _ in range(min(50, calls)):
        await fn()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--limit-calls", type=int, default=2000)
    parser.add_argument("--usage-rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("AIBROKER_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="aibroker-bench-routing-")
    url = args.database_url or f"sqlite+aiosqlite:///{scratch}/bench.db"
    upgrade(url)
    db = Database(url)
    catalog = Catalog({"mock"})
    async with db.sessions() as session:
        await apply(session, catalog, config())
        await session.commit()
    org_id = new_id("org")
    seed_usage(url, org_id, args.usage_rows)
    runtime = await RoutingRuntime.start(db.sessions)
    default = DefaultRouter(catalog, GatewaySettings(default_model="mock/mock-chat"))
    router = RoutingRouter(default, runtime, catalog)
    limits = RoutingLimits(OpenAdmission(), db.sessions)
    principal = Principal(organization_id=org_id, organization_slug="bench", plan="professional", margin_bps=None, timezone="UTC")

    def ctx(feature: str | None, group: str | None = None, profile: str = "usuaria") -> CallContext:
        return CallContext(request_id=new_id("req"), principal=principal, endpoint="chat", feature=feature, profile=profile, group=group)

    routed, promo, unrouted = ctx(FEATURES[10]), ctx(FEATURES[1], group="promo"), ctx("not_configured")
    rows: list[tuple[str, str]] = []
    base = per_call_us(lambda: default.candidates(routed, None, "chat"), args.calls)
    rows.append(("DefaultRouter.candidates (fresh install)", f"{base:8.2f}"))
    for label, c in (("RoutingRouter, routed feature", routed), ("RoutingRouter, feature with group overrides", promo),
                     ("RoutingRouter, unrouted feature", unrouted)):
        us = per_call_us(lambda c=c: router.candidates(c, None, "chat"), args.calls)
        rows.append((label, f"{us:8.2f}  (+{us - base:.2f} vs default)"))
    entry = catalog.resolve("mock-chat")
    router.candidates(routed, None, "chat")  # sets routed.route (limits 150/day, 3000/month)
    samples = await async_samples(lambda: limits.admit(routed, entry, {}), args.limit_calls)
    q = statistics.quantiles(samples, n=100)
    rows.append(("limits check: indexed COUNT (RoutingLimits.admit)", f"{statistics.mean(samples):8.1f}  p50 {q[49]:.1f}  p99 {q[98]:.1f}"))
    admin_ctx = ctx(FEATURES[10], profile="admin")
    router.candidates(admin_ctx, None, "chat")
    samples = await async_samples(lambda: limits.admit(admin_ctx, entry, {}), args.limit_calls)
    rows.append(("limits check, row without limits (no query)", f"{statistics.mean(samples):8.2f}"))
    samples = await async_samples(lambda: default_session_roundtrip(db), args.limit_calls)
    rows.append(("for scale: one `SELECT 1` session round trip", f"{statistics.mean(samples):8.1f}"))
    await db.dispose()

    engine = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"\nRouting hot path: {len(FEATURES)} features x {len(PLANS)} plans x {len(PROFILES)} profiles "
          f"({len(FEATURES) * len(PLANS) * len(PROFILES) * 2} matrix rows), {args.usage_rows} usage records, {engine}\n")
    width = max(len(r[0]) for r in rows)
    print(f"{'path'.ljust(width)}  µs per call")
    print(f"{'-' * width}  {'-' * 40}")
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")


if __name__ == "__main__":
    asyncio.run(main())

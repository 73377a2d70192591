"""Rate limiter cost per request: the admission component measured directly (µs per
admit + settle, memory vs Redis), and end to end (a broker with limits on vs off).

    .venv/bin/python bench/ratelimit.py [--redis redis://127.0.0.1:6379/7] [--iterations 5000] [--requests 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _limits_common import broker, create_org, drive, table  # noqa: E402


async def component(redis_url: str | None, iterations: int) -> float:
    """µs per admit+settle on a STARTER organization with a key limit: 5 request counters
    (key rpm, org rpm, org rph, provider rpm, org monthly requests) and 3 token counters."""
    from aibroker.catalog.service import Catalog
    from aibroker.config import Settings
    from aibroker.db import Database
    from aibroker.gateway.context import CallContext
    from aibroker.limits.wiring import start_limits
    from aibroker.migrations.runner import upgrade
    from aibroker.providers.base import Usage
    from aibroker.tenancy import service
    from aibroker.tenancy.auth import Principal

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        upgrade(url)
        os.environ["AIBROKER_PROVIDER_RPM"] = '{"mock": 100000000}'
        if redis_url:
            os.environ["AIBROKER_REDIS_URL"] = redis_url
        else:
            os.environ.pop("AIBROKER_REDIS_URL", None)
        settings = Settings()
        db = Database(url)
        async with db.sessions() as session:
            org = await service.create_organization(session, name="Bench", plan="starter")
            key = await service.create_api_key(session, organization_id=org.id, limits={"rpm": 10**9})
            await session.execute(
                __import__("sqlalchemy").text("UPDATE plans SET requests_per_minute=NULL, requests_per_hour=NULL, "
                                              "tokens_per_minute=1000000000, monthly_token_quota=1000000000000, "
                                              "monthly_request_quota=1000000000 WHERE slug='starter'")
            )
            await session.commit()
        plans, admission, cache = await start_limits(settings, db)
        await admission.counters.clear_all()
        # the whole plan applies, with limits too high to refuse: we measure the bookkeeping
        model = Catalog({"mock"}, {}).resolve("mock/mock-chat")
        principal = Principal(organization_id=org.id, organization_slug=org.slug, plan="starter", margin_bps=None,
                              timezone="UTC", api_key_id=key.id)
        usage = Usage(input_tokens=20, output_tokens=30)
        body = {"messages": [{"role": "user", "content": "hi"}]}
        for i in range(200):  # warm up (tenant lookup, scripts loaded)
            ctx = CallContext(request_id=f"w{i}", principal=principal, endpoint="chat")
            await admission.settle(ctx, await admission.admit(ctx, model, body), model, usage)
        started = time.perf_counter()
        for i in range(iterations):
            ctx = CallContext(request_id=f"r{i}", principal=principal, endpoint="chat")
            await admission.settle(ctx, await admission.admit(ctx, model, body), model, usage)
        elapsed = time.perf_counter() - started
        await cache.aclose()
        await db.dispose()
        return elapsed / iterations * 1e6


def end_to_end(redis_url: str | None, requests: int, concurrency: int) -> list[list[object]]:
    rows = []
    bodies = [{"model": "mock-chat", "messages": [{"role": "user", "content": f"q {i}"}]} for i in range(requests)]
    for label, env in (("limits off", {"AIBROKER_LIMITS_ENABLED": "false"}), ("limits on", {})):
        if redis_url:
            env = {**env, "AIBROKER_REDIS_URL": redis_url}
        with broker(env) as url:
            org = create_org(url, plan="starter")
            import httpx
            httpx.patch(url + "/api/admin/plans/starter", headers={"authorization": "Bearer bench-admin-token"},
                        json={"requests_per_minute": 10**8, "requests_per_hour": 10**8, "tokens_per_minute": 10**9,
                              "monthly_token_quota": 10**12, "monthly_request_quota": 10**9}).raise_for_status()
            drive(url, org["api_key"], bodies[:200], concurrency, {"cache-control": "no-store"})  # warm up
            result = drive(url, org["api_key"], bodies, concurrency, {"cache-control": "no-store"})
            codes = {r.status_code for r in result.responses}
            rows.append([label, "redis" if redis_url else "memory", f"{result.throughput:.0f}", f"{result.mean_ms():.2f}",
                         f"{result.p50_ms():.2f}", ",".join(map(str, sorted(codes)))])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default=os.environ.get("AIBROKER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"))
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=1, help="end to end: 1 shows the per-request cost most clearly")
    args = parser.parse_args()
    # End to end first: the component runs below leave this process's heap larger, which
    # slowed the HTTP client of a later end-to-end run (measured: +1.3 ms per request).
    e2e = end_to_end(None, args.requests, args.concurrency) + end_to_end(args.redis, args.requests, args.concurrency)
    print("Rate limiter: admit + settle on the component (8 counters: 5 request, 3 token)\n")
    rows = [[backend, f"{asyncio.run(component(url, args.iterations)):.1f}"] for backend, url in (("memory", None), ("redis", args.redis))]
    print(table(["backend", "µs per admit+settle"], rows))
    print(f"\nEnd to end: {args.requests} chat requests (mock-chat), concurrency {args.concurrency}\n")
    print(table(["run", "backend", "req/s", "mean ms", "p50 ms", "statuses"], e2e))


if __name__ == "__main__":
    main()

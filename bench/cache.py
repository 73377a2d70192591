"""Response cache benchmark: a workload where 40% of the prompts repeat earlier ones,
against a broker on the mock provider (mock-slow: a fixed upstream latency), with the
cache on and bypassed (Cache-Control: no-store). Prints a table.

    .venv/bin/python bench/cache.py [--requests 2000] [--concurrency 32] [--latency-ms 50] [--redis redis://...]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _limits_common import broker, create_org, drive, table  # noqa: E402


def workload(requests: int, repeat_share: float, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    prompts: list[str] = []
    for i in range(requests):
        if prompts and rng.random() < repeat_share:
            prompts.append(rng.choice(prompts))
        else:
            prompts.append(f"question {i}: summarise topic {rng.randrange(10**9)} in one line")
    return [{"model": "mock-slow", "temperature": 0, "messages": [{"role": "user", "content": p}]} for p in prompts]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--repeat", type=float, default=0.4)
    parser.add_argument("--redis", default=None, help="use Redis for the cache (AIBROKER_REDIS_URL)")
    args = parser.parse_args()
    env = {"AIBROKER_MOCK_LATENCY_MS": str(args.latency_ms)}
    if args.redis:
        env["AIBROKER_REDIS_URL"] = args.redis
    bodies = workload(args.requests, args.repeat)
    rows = []
    with broker(env) as url:
        warm = create_org(url)  # the first requests of a fresh broker are slower: not part of either run
        drive(url, warm["api_key"], workload(300, 0, seed=1), args.concurrency, {"cache-control": "no-store"})
        for label, headers in (("cache on", {}), ("no cache (no-store)", {"cache-control": "no-store"})):
            org = create_org(url)
            result = drive(url, org["api_key"], bodies, args.concurrency, headers)
            ok = [r for r in result.responses if r.status_code == 200]
            hits = sum(r.headers.get("x-aibroker-cache") == "hit" for r in ok)
            billed = sum(int(r.headers.get("x-aibroker-cost-micros", 0)) for r in ok)
            hit_ms = [lat * 1000 for lat, r in zip(result.latencies, result.responses) if r.headers.get("x-aibroker-cache") == "hit"]
            hit_p50 = f"{sorted(hit_ms)[len(hit_ms) // 2]:.1f}" if hit_ms else "-"
            rows.append([label, len(ok), f"{hits / len(ok):.1%}", billed, f"{result.throughput:.0f}", f"{result.p50_ms():.1f}", hit_p50])
    saved = rows[1][3] - rows[0][3]
    print(f"Response cache: {args.requests} chat requests, {args.repeat:.0%} repeats, concurrency {args.concurrency}, "
          f"upstream latency {args.latency_ms} ms, backend {'redis' if args.redis else 'memory'}\n")
    print(table(["run", "ok", "hit rate", "billed micros", "req/s", "p50 ms", "p50 ms of hits"], rows))
    print(f"\ncost saved by the cache: {saved} micros ({saved / max(rows[1][3], 1):.1%} of the uncached bill); "
          f"throughput x{float(rows[0][4]) / max(float(rows[1][4]), 1):.2f}")


if __name__ == "__main__":
    main()

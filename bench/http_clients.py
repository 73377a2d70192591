#!/usr/bin/env python3
"""Outbound HTTP client cost: httpx vs aiohttp against the same nginx fake upstream.

Why aibroker's provider adapters use aiohttp although DESIGN names httpx: this measures
both clients alone (no gateway), one process, at 1 and 64 concurrent requests.
Run with the project's venv: .venv/bin/python bench/http_clients.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 50})
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


async def _drive(one, requests: int, concurrency: int) -> float:
    await asyncio.gather(*(one() for _ in range(concurrency)))  # warm the connection pool
    gate = asyncio.Semaphore(concurrency)

    async def limited() -> None:
        async with gate:
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(limited() for _ in range(requests)))
    return requests / (time.perf_counter() - started)


async def with_httpx(url: str, requests: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(limits=limits) as client:
        async def one() -> None:
            orjson.loads((await client.post(url, content=BODY, headers=HEADERS)).content)
        return await _drive(one, requests, concurrency)


async def with_aiohttp(url: str, requests: int, concurrency: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512)) as session:
        async def one() -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                orjson.loads(await response.read())
        return await _drive(one, requests, concurrency)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, h.Processes() as procs:
        url = f"http://127.0.0.1:{h.start_fake_upstream(procs, Path(tmp))}/v1/chat/completions"
        for _ in range(args.rounds):
            for concurrency in (1, 64):
                for name, fn in (("httpx", with_httpx), ("aiohttp", with_aiohttp)):
                    rows.setdefault((name, concurrency), []).append(uvloop.run(fn(url, args.requests, concurrency)))
    print(f"httpx {httpx.__version__}, aiohttp {aiohttp.__version__}; best of {args.rounds} rounds, {args.requests} requests each\n")
    print("| client | req/s c1 | req/s c64 |\n|---|---:|---:|")
    for name in ("httpx", "aiohttp"):
        print(f"| {name} | {max(rows[(name, 1)]):,.0f} | {max(rows[(name, 64)]):,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

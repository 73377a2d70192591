"""Helpers shared by bench/cache.py and bench/ratelimit.py: a broker in a child process
on a fresh SQLite database, an organization, and a concurrent load driver."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

VENV_BIN = Path(sys.executable).parent
ADMIN = "bench-admin-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def broker(extra_env: dict[str, str] | None = None):
    """`aibroker serve` on a temporary SQLite database; yields its base URL."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "AIBROKER_DATABASE_URL": f"sqlite:///{tmp}/bench.db", "AIBROKER_ADMIN_TOKEN": ADMIN,
               "AIBROKER_LOG_LEVEL": "warning", **(extra_env or {})}
        proc = subprocess.Popen([str(VENV_BIN / "aibroker"), "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the broker did not start")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def create_org(url: str, plan: str = "unlimited", credit: str = "1000") -> dict[str, Any]:
    response = httpx.post(url + "/api/admin/organizations", json={"name": f"Bench {time.time_ns()}", "plan": plan, "credit": credit},
                          headers={"authorization": f"Bearer {ADMIN}"}, timeout=30)
    response.raise_for_status()
    return response.json()


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    responses: list[httpx.Response] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return len(self.responses) / self.seconds

    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1000


async def _drive(url: str, key: str, bodies: list[dict[str, Any]], concurrency: int, headers: dict[str, str]) -> LoadResult:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    result = LoadResult(0.0)
    auth = {"authorization": f"Bearer {key}", **headers}
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post("/v1/chat/completions", json=body, headers=auth)
                result.latencies.append(time.perf_counter() - started)
                result.responses.append(response)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


def drive(url: str, key: str, bodies: list[dict[str, Any]], concurrency: int = 32, headers: dict[str, str] | None = None) -> LoadResult:
    return asyncio.run(_drive(url, key, bodies, concurrency, headers or {}))


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])])

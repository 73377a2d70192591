"""Exact across processes: 4 real `aibroker serve` processes share one database and one
Redis; a key limited to N requests per minute gets exactly N answers out of a 3N burst.

Generated only when AIBROKER_TEST_REDIS_URL is set (in-process counters are per process
by design; Redis is what makes several processes exact)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.limits.conftest import flush_redis

PROCESSES = 4
LIMIT = 10
AIBROKER = Path(sys.executable).parent / "aibroker"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"broker at {url} did not start")


@pytest.fixture
def brokers(database_url: str):
    flush_redis()
    env = {
        **os.environ, "AIBROKER_DATABASE_URL": database_url, "AIBROKER_REDIS_URL": REDIS_URL,
        "AIBROKER_ADMIN_TOKEN": "test-admin-token", "AIBROKER_LOG_LEVEL": "warning",
    }
    procs, urls = [], []
    try:
        for _ in range(PROCESSES):
            port = _free_port()
            procs.append(subprocess.Popen([str(AIBROKER), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_ready(url, proc)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _burst(urls: list[str], key: str, count: int) -> list[httpx.Response]:
    body = {"model": "mock-chat", "messages": [{"role": "user", "content": "burst"}]}
    headers = {"authorization": f"Bearer {key}", "cache-control": "no-store"}
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        calls = [client.post(urls[i % len(urls)] + "/v1/chat/completions", json=body, headers=headers) for i in range(count)]
        return await asyncio.gather(*calls)


if REDIS_URL:

    def test_exactly_n_of_3n_pass_across_four_processes(brokers):
        first = brokers[0]
        admin = {"authorization": "Bearer test-admin-token"}
        org = httpx.post(first + "/api/admin/organizations", json={"name": "Burst", "plan": "unlimited", "credit": "10"}, headers=admin)
        assert org.status_code == 201, org.text
        created = httpx.post(first + "/api/keys", json={"name": "burst", "rpm": LIMIT}, headers={"authorization": f"Bearer {org.json()['api_key']}"})
        assert created.status_code == 201, created.text
        responses = asyncio.run(_burst(brokers, created.json()["key"], 3 * LIMIT))
        assert Counter(r.status_code for r in responses) == {200: LIMIT, 429: 2 * LIMIT}
        for refused in (r for r in responses if r.status_code == 429):
            assert 1 <= int(refused.headers["retry-after"]) <= 60
            assert refused.json()["error"]["type"] == "rate_limit_exceeded"
        remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in responses if r.status_code == 200)
        assert remaining == list(range(LIMIT))  # every admitted request saw a distinct count

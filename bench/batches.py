#!/usr/bin/env python3
"""Batch throughput: lines per second through ONE `aibroker worker` process, against the
fake upstream (bench/_harness.py's nginx: a canned chat completion), and the same lines sent
live to /v1/chat/completions at the same concurrency, as a ratio.

The batch figure is wall time from the batch's creation to `completed` (validation, every
line held / called / settled with its result row, the output file written), with the worker
already running. The live figure is the same N requests through `aibroker serve` with as
many in flight as the batch runs lines at once (AIBROKER_BATCH_CONCURRENCY).

Run: python3 bench/batches.py [--lines 500] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

ROOT = h.BENCH_DIR.parent
BIN = ROOT / ".venv" / "bin"
RESULTS_FILE = h.BENCH_DIR / "results" / "batches.md"
ADMIN = "bench-admin-token"


def _line(i: int) -> dict:
    return {"custom_id": f"b{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": f"Say hello {i}"}], "max_tokens": 50}}


async def _live(url: str, key: str, lines: int, concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=60) as client:
        async def one(i: int) -> None:
            async with limit:
                response = await client.post("/v1/chat/completions", json=_line(i)["body"])
                assert response.status_code == 200, response.text
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(lines)))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aibroker-bench-batches-"))
    with h.Processes() as procs:
        upstream = h.start_fake_upstream(procs, tmp)
        env = {**os.environ, "AIBROKER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
               "AIBROKER_STORAGE_DIR": str(tmp / "storage"), "AIBROKER_ADMIN_TOKEN": ADMIN,
               "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream}/v1",
               "AIBROKER_LOG_LEVEL": "warning", "AIBROKER_CACHE_ENABLED": "false",
               "AIBROKER_BATCH_CONCURRENCY": str(args.concurrency), "AIBROKER_JOB_POLL_SECONDS": "0.1"}
        h.run([str(BIN / "aibroker"), "migrate"], env=env, cwd=ROOT)
        port = h.free_port()
        url = f"http://127.0.0.1:{port}"
        serve = procs.start("serve", [str(BIN / "aibroker"), "serve", "--port", str(port)], tmp / "serve.log", env=env, cwd=ROOT)
        h.wait_http(url + "/healthz", serve)
        org = httpx.post(url + "/api/admin/organizations", json={"name": "Bench", "credit": "1000", "plan": "unlimited"},
                         headers={"authorization": f"Bearer {ADMIN}"}).json()
        key = org["api_key"]
        auth = {"authorization": f"Bearer {key}"}
        worker = procs.start("worker", [str(BIN / "aibroker"), "worker", "-c", "1"], tmp / "worker.log", env=env, cwd=ROOT)
        data = b"".join(json.dumps(_line(i)).encode() + b"\n" for i in range(args.lines))
        source = httpx.post(url + "/v1/files", headers=auth, files={"file": ("in.jsonl", io.BytesIO(data))},
                            data={"purpose": "batch"}).json()
        deadline = time.monotonic() + 120  # the worker's start-up is not part of the timing
        while "running" not in (tmp / "worker.log").read_text():
            assert worker.poll() is None and time.monotonic() < deadline, h.log_tail(tmp / "worker.log")
            time.sleep(0.1)
        start = time.perf_counter()
        batch = httpx.post(url + "/v1/batches", headers=auth, json={
            "input_file_id": source["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}).json()
        while True:
            state = httpx.get(url + f"/v1/batches/{batch['id']}", headers=auth).json()
            if state["status"] in ("completed", "failed", "expired", "cancelled"):
                break
            time.sleep(0.05)
        batch_seconds = time.perf_counter() - start
        assert state["status"] == "completed" and state["request_counts"]["completed"] == args.lines, state
        live_seconds = asyncio.run(_live(url, key, args.lines, args.concurrency))
    batch_rate, live_rate = args.lines / batch_seconds, args.lines / live_seconds
    table = "\n".join([
        "| path | lines | concurrency | seconds | lines/s |",
        "|---|---:|---:|---:|---:|",
        f"| batch (one worker process) | {args.lines} | {args.concurrency} | {batch_seconds:.2f} | {batch_rate:.1f} |",
        f"| live /v1/chat/completions | {args.lines} | {args.concurrency} | {live_seconds:.2f} | {live_rate:.1f} |",
        "",
        f"batch / live throughput ratio: **{batch_rate / live_rate:.2f}**",
    ])
    print(table)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS_FILE.write_text(
        f"# Batch throughput\n\n`python3 bench/batches.py --lines {args.lines} --concurrency {args.concurrency}`, {stamp}, "
        "SQLite, fake upstream = nginx canned completion. Figures are from a shared, loaded 2-core machine "
        "(seven builds running at once): read the ratio, not the absolute numbers.\n\n" + table + "\n"
    )


if __name__ == "__main__":
    main()

"""Messaging benchmark: webhook intake rate and end-to-end auto-responder throughput.

    .venv/bin/python bench/messaging.py [--events 2000] [--concurrency 32] [--slots 8] [--worker-processes 1,2]
    AIBROKER_BENCH_DATABASE_URL=postgresql://... to run on PostgreSQL (default: a temp SQLite file)

Every part runs in its own process, as deployed: `aibroker serve` takes the webhooks,
`aibroker worker` processes run the jobs, and a fake Graph API (tests/fakes) takes the sends.
The senders in this process use aiohttp.

1. intake: signed WhatsApp webhook events POSTed over HTTP (each a new message) -> accepted,
   stored once in the inbox and enqueued; events/s as the senders saw them.
2. end to end, once per worker-process count: the queue is filled again by intake, then the
   workers drain it: per message process_event -> ai_response (two gateway calls on the mock
   provider, charged to the wallet) -> send_whatsapp to the fake Graph API over HTTP.
   messages/s = events / (last job completed - first job started), from the jobs table, so
   process start-up is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from _harness import Processes, free_port, log_tail, post_json, wait_http  # noqa: E402

AIBROKER = BENCH.parent / ".venv" / "bin" / "aibroker"
ADMIN = "bench-admin-token"

FAKE_GRAPH = """
import threading
from tests.fakes.meta_graph import FakeGraphAPI
from tests.messaging.support import PHONE_ID, TOKENS
graph = FakeGraphAPI().start()
graph.tokens[PHONE_ID] = TOKENS["whatsapp"]
print("ready", graph.base_url, flush=True)
threading.Event().wait()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32, help="Concurrent webhook senders.")
    parser.add_argument("--slots", type=int, default=8, help="Job slots per worker process (aibroker worker -c).")
    parser.add_argument("--worker-processes", default="1,2", help="Comma list: one end-to-end run per count.")
    args = parser.parse_args()
    url = os.environ.get("AIBROKER_BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    with Processes() as procs, tempfile.TemporaryDirectory() as tmp:
        rows = _bench(procs, Path(tmp), url, args)
    db = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"\nmessaging benchmark ({db}, {args.events} events, {args.concurrency} webhook senders, {args.slots} slots per worker process)\n")
    print(f"| {'stage':<52} | {'count':>6} | {'seconds':>8} | {'per second':>10} |")
    print(f"|{'-' * 54}|{'-' * 7}:|{'-' * 9}:|{'-' * 11}:|")
    for stage, count, seconds in rows:
        print(f"| {stage:<52} | {count:>6} | {seconds:>8.2f} | {count / seconds:>10.1f} |")


def _bench(procs: Processes, tmp: Path, url: str, args: argparse.Namespace) -> list[tuple[str, int, float]]:
    from tests.messaging.support import channel_body, inbound, signed

    graph = procs.start("fake-graph", [sys.executable, "-c", FAKE_GRAPH], tmp / "graph.log", cwd=BENCH.parent)
    try:
        graph_url = _wait_ready_line(tmp / "graph.log", graph)
    except RuntimeError as exc:
        raise SystemExit(f"{exc}\n{log_tail(tmp / 'graph.log')}") from exc
    broker_port = free_port()
    env = {
        **os.environ, "AIBROKER_DATABASE_URL": url, "AIBROKER_ADMIN_TOKEN": ADMIN, "CRON_SECRET": "bench-cron",
        "AIBROKER_META_GRAPH_URL": graph_url, "AIBROKER_DEFAULT_MODEL": "mock/mock-chat",
        "AIBROKER_LOG_LEVEL": "warning", "AIBROKER_LIMITS_ENABLED": "false",  # plan limits would block the flood
    }
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        env.pop(name, None)
    _fresh_database(url)
    broker = procs.start("serve", [str(AIBROKER), "serve", "--port", str(broker_port)], tmp / "serve.log", env=env)
    base = f"http://127.0.0.1:{broker_port}"
    try:
        wait_http(base + "/healthz", broker)
    except RuntimeError as exc:
        raise SystemExit(f"aibroker serve: {exc}\n{log_tail(tmp / 'serve.log')}") from exc
    status, text = post_json(base + "/api/admin/organizations", {"name": "Bench", "slug": "bench", "credit": "1000"},
                             {"authorization": f"Bearer {ADMIN}"})
    assert status == 201, text
    status, text = post_json(base + "/api/channels", channel_body("whatsapp"), {"authorization": f"Bearer {json.loads(text)['api_key']}"})
    assert status == 201, text

    rows: list[tuple[str, int, float]] = []
    counts = [int(n) for n in args.worker_processes.split(",") if n.strip()]
    for round_, processes in enumerate(counts):
        round_start = _utcnow()
        bodies = [signed("whatsapp", inbound("whatsapp", f"hola quiero precio {i}", user=f"549{round_}{i:08d}")[0]) for i in range(args.events)]
        intake = asyncio.run(_intake(base + "/api/webhook/whatsapp/bench", bodies, args.concurrency))
        rows.append((f"webhook intake (signed events accepted+stored), run {round_ + 1}", args.events, intake))
        workers = [procs.start(f"worker-{i}", [str(AIBROKER), "worker", "-c", str(args.slots)], tmp / f"worker-{round_}-{i}.log", env=env)
                   for i in range(processes)]
        seconds = _wait_all_sent(url, round_start, args.events * (round_ + 1), workers, tmp / f"worker-{round_}-0.log")
        for worker in workers:
            procs.stop(worker)
        rows.append((f"end to end, {processes} worker process(es) x {args.slots} slots", args.events, seconds))
    return rows


def _wait_ready_line(path: Path, proc, timeout: float = 30.0) -> str:  # type: ignore[no-untyped-def]
    """The base URL the fake Graph API prints once it listens."""
    deadline = time.monotonic() + timeout
    while True:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("ready "):
                return line.split()[1]
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the fake Graph API did not start")
        time.sleep(0.05)


def _fresh_database(url: str) -> None:
    from aibroker.db import make_sync_engine
    from aibroker.migrations.runner import upgrade

    if url.startswith("postgresql"):
        from sqlalchemy import text

        engine = make_sync_engine(url, pooled=False)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    upgrade(url)


async def _intake(url: str, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int) -> float:
    import aiohttp

    queue = list(reversed(bodies))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        async def sender() -> None:
            while queue:
                raw, headers = queue.pop()
                async with http.post(url, data=raw, headers=headers) as response:
                    answer = await response.json()
                    assert response.status == 200 and answer["received"] == 1, answer

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        return time.perf_counter() - started


def _wait_all_sent(url: str, round_start, want: int, workers: list, worker_log: Path) -> float:  # type: ignore[no-untyped-def,type-arg]
    """Seconds from the first job of this round started to its last one completed."""
    from sqlalchemy import text

    from aibroker.db import make_sync_engine

    engine = make_sync_engine(url, pooled=False)
    try:
        while True:
            with engine.connect() as conn:
                sent = conn.execute(text("SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'sent'")).scalar()
                failed = conn.execute(text("SELECT count(*) FROM jobs WHERE status = 'failed'")).scalar()
            if failed or any(w.poll() is not None for w in workers):
                raise SystemExit(f"{failed} jobs failed or a worker exited:\n{log_tail(worker_log)}")
            if sent >= want:
                break
            time.sleep(0.05)  # polling for completion; the figure itself comes from job timestamps
        with engine.connect() as conn:
            first, last = conn.execute(
                text("SELECT min(started_at), max(completed_at) FROM jobs WHERE created_at >= :since"), {"since": round_start}
            ).one()
    finally:
        engine.dispose()
    return _seconds(last) - _seconds(first)


def _utcnow():  # type: ignore[no-untyped-def]
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def _seconds(value) -> float:  # type: ignore[no-untyped-def]
    import datetime as dt

    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.timestamp() if value.tzinfo else value.replace(tzinfo=dt.UTC).timestamp()


if __name__ == "__main__":
    main()

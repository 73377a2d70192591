"""Messaging benchmark: webhook intake rate and end-to-end auto-responder throughput.

    .venv/bin/python bench/messaging.py [--events 2000] [--concurrency 32] [--workers 8]
    AIBROKER_BENCH_DATABASE_URL=postgresql://... to run on PostgreSQL (default: a temp SQLite file)

1. intake: signed WhatsApp webhook events POSTed over HTTP (each a new message) -> accepted,
   stored once in the inbox and enqueued; events/s.
2. end to end: the worker pool drains the queue: per message process_event -> ai_response
   (two gateway calls on the mock provider, charged to the wallet) -> send_whatsapp to a fake
   Graph API over HTTP; messages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32, help="Concurrent webhook senders.")
    parser.add_argument("--workers", type=int, default=8, help="Job slots of the worker pool.")
    args = parser.parse_args()

    from tests.fakes.meta_graph import FakeGraphAPI

    graph = FakeGraphAPI().start()
    url = os.environ.get("AIBROKER_BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    os.environ.update({
        "AIBROKER_DATABASE_URL": url, "AIBROKER_ADMIN_TOKEN": "test-admin-token", "CRON_SECRET": "bench-cron",
        "AIBROKER_META_GRAPH_URL": graph.base_url, "AIBROKER_DEFAULT_MODEL": "mock/mock-chat",
        "AIBROKER_LOG_LEVEL": "warning", "AIBROKER_LIMITS_ENABLED": "false",  # plan limits would block the flood
    })
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        os.environ.pop(name, None)
    from tests.support.broker import BrokerServer

    from aibroker.migrations.runner import upgrade

    if url.startswith("postgresql"):
        from sqlalchemy import text

        from aibroker.db import make_sync_engine

        engine = make_sync_engine(url, pooled=False)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    upgrade(url)
    broker = BrokerServer(url)
    broker.start()
    try:
        rows = asyncio.run(_bench(broker, graph, args))
    finally:
        broker.stop()
        graph.stop()
    db = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"\nmessaging benchmark ({db}, {args.events} events, {args.concurrency} webhook senders, {args.workers} worker slots)\n")
    print(f"{'stage':<44}{'count':>8}{'seconds':>10}{'per second':>12}")
    for stage, count, seconds in rows:
        print(f"{stage:<44}{count:>8}{seconds:>10.2f}{count / seconds:>12.1f}")


async def _bench(broker, graph, args):  # type: ignore[no-untyped-def]
    import httpx
    from tests.messaging.support import TOKENS, channel_body, inbound, signed

    from aibroker.jobs.runner import Worker

    org = broker.create_org("Bench", credit="1000", slug="bench")
    graph.tokens["420000000000002"] = TOKENS["whatsapp"]
    with broker.client(org["api_key"]) as api:
        assert api.post("/api/channels", json=channel_body("whatsapp")).status_code == 201
    bodies = [signed("whatsapp", inbound("whatsapp", f"hola quiero precio {i}", user=f"54911{i:08d}")[0]) for i in range(args.events)]

    queue: asyncio.Queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    async with httpx.AsyncClient(base_url=broker.url, timeout=60) as client:
        async def sender() -> None:
            while not queue.empty():
                raw, headers = queue.get_nowait()
                response = await client.post("/api/webhook/whatsapp/bench", content=raw, headers=headers)
                assert response.status_code == 200 and response.json()["received"] == 1, response.text

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(args.concurrency)))
        intake = time.perf_counter() - started
    assert broker.scalar("select count(*) from webhook_events") == args.events

    loop = broker.services.writer.loop
    worker = Worker(broker.services, concurrency=args.workers, worker_id="bench")
    started = time.perf_counter()
    total = 0
    while True:  # run on the app's loop: the gateway's money writer lives there
        done = asyncio.run_coroutine_threadsafe(worker.run_batch(10_000), loop).result()
        total += sum(done.values())
        if sum(done.values()) == 0:
            break
    e2e = time.perf_counter() - started
    sent = broker.scalar("select count(*) from messages where direction = 'outbound' and status = 'sent'")
    if sent != args.events:
        for row in broker.rows(__import__("aibroker.models", fromlist=["Job"]).Job)[:3000]:
            if row.status != "completed" or (row.result or {}).get("action") not in (None, "reply"):
                print(row.type, row.status, row.error, row.result, file=sys.stderr)
    assert sent == args.events, f"only {sent} of {args.events} replies were sent"
    return [
        ("webhook intake (signed events accepted+stored)", args.events, intake),
        ("end to end (inbound -> AI reply -> sent)", args.events, e2e),
        ("jobs run by the worker pool", total, e2e),
    ]


if __name__ == "__main__":
    main()

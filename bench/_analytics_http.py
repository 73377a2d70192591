"""bench/analytics.py's whole-request figure: sequential POST /v1/chat/completions to a broker
served in this process (the mock provider answering at once), rollups on and off in turns."""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from typing import Any

import httpx
import uvicorn

from aibroker.ai.rollup_writer import RollupWriter

ADMIN = "bench-admin-token"
BODY = {"model": "mock-chat", "messages": [{"role": "user", "content": "hello there broker"}], "max_tokens": 16}


def http_bench(kind: str, url: str, requests: int) -> list[dict[str, Any]]:
    os.environ.update({"AIBROKER_DATABASE_URL": url, "AIBROKER_ADMIN_TOKEN": ADMIN, "AIBROKER_MOCK_LATENCY_MS": "0",
                       "AIBROKER_ALERT_SCAN_SECONDS": "0", "AIBROKER_LOG_LEVEL": "WARNING"})
    from aibroker.app import create_app
    from aibroker.config import Settings

    app = create_app(Settings())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            created = http.post("/api/admin/organizations", json={"name": "Bench", "credit": "100000", "plan": "unlimited"},
                                headers={"authorization": f"Bearer {ADMIN}"}).json()
            headers = {"authorization": f"Bearer {created['api_key']}"}
            for _ in range(30):  # warm up
                http.post("/v1/chat/completions", json=BODY, headers=headers)
            timing: dict[bool, list[float]] = {True: [], False: []}
            for n in range(requests):
                for enabled in (n % 2 == 0, n % 2 == 1):
                    RollupWriter.enabled = enabled
                    started = time.perf_counter()
                    response = http.post("/v1/chat/completions", json=BODY, headers=headers)
                    timing[enabled].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, response.text
    finally:
        RollupWriter.enabled = True
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
    on, off = statistics.median(timing[True]), statistics.median(timing[False])
    return [{"db": kind, "what": "whole request (POST /v1/chat/completions, mock model), median", "off_ms": off,
             "on_ms": on, "ratio": on / off}]

"""A fleet of real `aibroker serve` processes on one database, for the multiprocess money
tests: started and stopped by pid (only the ones a test started; never left running)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select

from aibroker.models import Wallet, WalletHold
from tests.billing.conftest import ADMIN, AIBROKER, NO_LIMITS, ROOT

PROCESSES = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Node:
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Fleet:
    """N broker processes, started and stopped by pid (only the ones this test started)."""

    def __init__(
        self, url: str, logs: Path, mock_latency_ms: int, *, processes: int = PROCESSES, env: dict[str, str] | None = None
    ) -> None:
        self.env = {
            **os.environ,
            "AIBROKER_DATABASE_URL": url,
            "AIBROKER_ADMIN_TOKEN": ADMIN,
            "AIBROKER_LOG_LEVEL": "warning",
            "AIBROKER_MOCK_LATENCY_MS": str(mock_latency_ms),
            # With slow upstreams (the crash test) no lease goes back on its own mid-test, so
            # the holds left behind are exactly the ones the sweeper must release.
            "AIBROKER_LEASE_IDLE_SECONDS": "3600" if mock_latency_ms else "1",
            **NO_LIMITS,
            **(env or {}),
        }
        self.nodes = [Node(free_port(), logs / f"broker-{i}.log") for i in range(processes)]

    def start(self, node: Node) -> None:
        with node.log.open("ab") as log:
            node.process = subprocess.Popen(
                [AIBROKER, "serve", "--port", str(node.port)], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, node: Node, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert node.process is not None and node.process.poll() is None, node.log.read_text()[-3000:]
            try:
                if httpx.get(node.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # polling for readiness, not a timing assumption
        raise AssertionError(f"broker on port {node.port} did not start:\n{node.log.read_text()[-3000:]}")

    def start_all(self) -> None:
        # Started in parallel, then waited for: on a small machine each takes seconds.
        for node in self.nodes:
            self.start(node)
        for node in self.nodes:
            self.wait_ready(node)

    def kill(self, node: Node) -> None:
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGKILL)
        node.process.wait(timeout=10)

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.kill(node.process.pid, signal.SIGKILL)
                    node.process.wait(timeout=10)


@dataclass
class Outcome:
    request_id: str
    status: int | None  # None: the connection broke (its process was killed)
    cost: int | None
    body: dict | None


async def in_flight(client: httpx.AsyncClient, node: Node) -> int:
    """Requests the node is serving right now (its own Prometheus gauge, minus this scrape)."""
    text = (await client.get(node.url + "/metrics")).text
    line = next(row for row in text.splitlines() if row.startswith("aibroker_http_requests_in_flight "))
    return int(float(line.split()[1])) - 1


def lease_held(db) -> bool:
    with db.connect() as conn:
        return bool(conn.execute(select(func.sum(WalletHold.amount_micros))).scalar())


def wallet_once_leases_return(db, org_id: str, timeout: float = 30.0):
    """Idle processes give their wallet leases back on their own within seconds: wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        with db.connect() as conn:
            wallet = conn.execute(select(Wallet).where(Wallet.organization_id == org_id)).one()
        if wallet.held_micros == 0 or time.monotonic() > deadline:
            return wallet
        time.sleep(0.05)



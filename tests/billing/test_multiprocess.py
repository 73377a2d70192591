"""Several real `aibroker serve` processes on one PostgreSQL wallet: never overspent under
concurrency, and nothing lost when a process is killed with SIGKILL mid-load.

PostgreSQL only: without AIBROKER_TEST_DATABASE_URL these tests are not generated.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from aibroker.db import make_sync_engine
from aibroker.models import LedgerEntry, UsageRecord, Wallet, WalletHold
from tests.billing.conftest import ADMIN, AIBROKER, NO_LIMITS, ROOT, cli_json, run_cli
from tests.conftest import PG_URL, _truncate_pg

PROCESSES = 3
REQUESTS = 300


def _free_port() -> int:
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

    def __init__(self, url: str, logs: Path, mock_latency_ms: int) -> None:
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
        }
        self.nodes = [Node(_free_port(), logs / f"broker-{i}.log") for i in range(PROCESSES)]

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


async def _in_flight(client: httpx.AsyncClient, node: Node) -> int:
    """Requests the node is serving right now (its own Prometheus gauge, minus this scrape)."""
    text = (await client.get(node.url + "/metrics")).text
    line = next(row for row in text.splitlines() if row.startswith("aibroker_http_requests_in_flight "))
    return int(float(line.split()[1])) - 1


def _lease_held(db) -> bool:
    with db.connect() as conn:
        return bool(conn.execute(select(func.sum(WalletHold.amount_micros))).scalar())


def _wallet_once_leases_return(db, org_id: str, timeout: float = 30.0):
    """Idle processes give their wallet leases back on their own within seconds: wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        with db.connect() as conn:
            wallet = conn.execute(select(Wallet).where(Wallet.organization_id == org_id)).one()
        if wallet.held_micros == 0 or time.monotonic() > deadline:
            return wallet
        time.sleep(0.05)


async def _fire(fleet: Fleet, key: str, body: dict, prefix: str) -> list[Outcome]:
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one(i: int) -> Outcome:
            node = i % PROCESSES
            rid = f"{prefix}-p{node}-{i}"
            headers = {"authorization": f"Bearer {key}", "x-request-id": rid}
            try:
                response = await client.post(fleet.nodes[node].url + "/v1/chat/completions", json=body, headers=headers)
            except httpx.HTTPError:
                return Outcome(rid, None, None, None)
            cost = response.headers.get("x-aibroker-cost-micros")
            return Outcome(rid, response.status_code, int(cost) if cost else None, response.json())

        return await asyncio.gather(*(one(i) for i in range(REQUESTS)))


def _create_org(fleet: Fleet, name: str, credit: str) -> dict:
    response = httpx.post(
        fleet.nodes[0].url + "/api/admin/organizations", json={"name": name, "credit": credit},
        headers={"authorization": f"Bearer {ADMIN}"}, timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


if PG_URL:

    @pytest.fixture
    def fleet(pg_migrated: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Fleet]:
        _truncate_pg(pg_migrated)
        nodes = Fleet(pg_migrated, tmp_path, mock_latency_ms=getattr(request, "param", 0))
        try:
            nodes.start_all()
            yield nodes
        finally:
            nodes.stop_all()

    @pytest.fixture
    def db():
        engine = make_sync_engine(PG_URL, pooled=False)
        yield engine
        engine.dispose()

    def test_processes_never_overspend_one_wallet(fleet, db):
        credit = 480  # micros: ~30 requests at their real price (16), far fewer at their hold (47)
        org = _create_org(fleet, "Load", f"0.{credit:06d}")
        body = {"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        outcomes = asyncio.run(_fire(fleet, org["api_key"], body, "load"))

        served = [o for o in outcomes if o.status == 200]
        refused = [o for o in outcomes if o.status == 402]
        assert len(served) + len(refused) == REQUESTS, {o.status for o in outcomes}
        assert served and refused
        price = served[0].cost
        assert price and {o.cost for o in served} == {price}
        assert len(served) * price <= credit
        for o in refused:
            error = o.body["error"]
            assert error["type"] == "insufficient_balance" and error["required_micros"] > error["available_micros"]

        wallet = _wallet_once_leases_return(db, org["organization_id"])
        with db.connect() as conn:
            debits = conn.execute(select(func.sum(LedgerEntry.amount_micros)).where(LedgerEntry.kind == "debit")).scalar()
            billed = conn.execute(select(func.count()).select_from(UsageRecord).where(UsageRecord.billed_cost_micros > 0)).scalar()
        assert wallet.balance_micros >= 0 and wallet.held_micros == 0
        assert -debits == credit - wallet.balance_micros == len(served) * price
        assert billed == len(served)
        assert run_cli(PG_URL, "verify-ledger").returncode == 0

    @pytest.mark.parametrize("fleet", [3000], indirect=True)  # mock-slow: 3 s upstream, so requests are in flight
    def test_a_killed_process_loses_nothing(fleet, db):
        org = _create_org(fleet, "Crash", "1")
        body = {"model": "mock-slow", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        victim = fleet.nodes[1]

        async def load_and_kill() -> list[Outcome]:
            load = asyncio.ensure_future(_fire(fleet, org["api_key"], body, "crash"))
            # Kill once the victim serves requests holding money (from its wallet lease).
            async with httpx.AsyncClient(timeout=5) as client:
                while await _in_flight(client, victim) < 20 or not _lease_held(db):
                    await asyncio.sleep(0.02)
            fleet.kill(victim)
            return await load

        outcomes = asyncio.run(load_and_kill())
        broken = [o for o in outcomes if o.status is None]
        served = [o for o in outcomes if o.status == 200]
        assert broken and all(o.request_id.startswith("crash-p1-") for o in broken)
        assert {o.status for o in outcomes} <= {200, None}

        fleet.start(victim)
        fleet.wait_ready(victim)
        again = httpx.post(
            victim.url + "/v1/chat/completions", json={**body, "model": "mock-chat"},
            headers={"authorization": f"Bearer {org['api_key']}", "x-request-id": "after-restart"}, timeout=30,
        )
        assert again.status_code == 200
        served.append(Outcome("after-restart", 200, int(again.headers["x-aibroker-cost-micros"]), again.json()))

        with db.connect() as conn:
            orphaned = conn.execute(select(func.sum(WalletHold.amount_micros))).scalar()
        assert orphaned and orphaned > 0  # the killed process's holds, until the sweeper releases them
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=901)).isoformat()
        assert cli_json(PG_URL, "holds", "sweep", "--now", later, "--json")["released_micros"] == orphaned

        with db.connect() as conn:
            wallet = conn.execute(select(Wallet).where(Wallet.organization_id == org["organization_id"])).one()
            debited = dict(
                conn.execute(
                    select(UsageRecord.request_id, LedgerEntry.amount_micros)
                    .join(LedgerEntry, LedgerEntry.usage_record_id == UsageRecord.id)
                    .where(LedgerEntry.kind == "debit")
                ).all()
            )
        assert wallet.held_micros == 0 and wallet.balance_micros >= 0
        for o in served:  # no served response lacks its debit
            assert debited.get(o.request_id) == -o.cost, o.request_id
        assert run_cli(PG_URL, "verify-ledger").returncode == 0

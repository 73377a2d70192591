"""A seeded fault-schedule simulator of the money path, in the spirit of TigerBeetle's.

One seed is one schedule, drawn from random.Random(seed): requests, streams, client
cancels (a timeout mid-request, a stream dropped after a few chunks), process kills
(SIGKILL, then a restart), process stalls (SIGSTOP past the lease TTL, then SIGCONT) and
database stalls (the wallet's lock held from another connection) across a fleet of real
`aibroker serve` processes, on one fresh wallet per seed. After the schedule, the
invariants are checked on the database:

    balance == the ledger's sum, held == the open leases and holds  (verify-ledger)
    nothing stuck past the lease TTL: every lease comes back once the fleet is idle
    no served answer lacks its debit: each 200 (and finished stream) is debited its cost
    no wallet below zero

A failing seed is printed so it can be replayed: AIBROKER_SIM_SEED=<seed>.
Used by tests/billing/test_fault_schedule.py (a few seeds) and bench/money_sim.py (many).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, select, text

from aibroker.billing.audit import verify
from aibroker.models import LedgerEntry, UsageRecord
from tests.billing.conftest import ADMIN
from tests.billing.fleet import Fleet, Node
from tests.billing.stall import wallet_locked, wallet_money

LEASE_TTL = 2.0
IDLE = 0.5


def fleet_env() -> dict[str, str]:
    """The fleet's settings for simulation: short lease TTL and idle delay, small chunks."""
    return {
        "AIBROKER_LEASE_TTL_SECONDS": str(LEASE_TTL),
        "AIBROKER_LEASE_IDLE_SECONDS": str(IDLE),
        "AIBROKER_LEASE_CHUNK_MICROS": "3000",
    }


@dataclass(slots=True)
class Event:
    at: float
    kind: str  # chat | slow | embed | stream | stream_cut | cancel | kill | pause | stall
    node: int = 0
    length: float = 0.0  # seconds (kill: until the restart; pause, stall, cancel: how long)
    chunks: int = 0  # stream_cut: chunks read before leaving


@dataclass
class Report:
    seed: int
    requests: int = 0
    kills: int = 0
    pauses: int = 0
    stalls: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"seed {self.seed}: {self.requests} requests, {self.kills} kills, {self.pauses} pauses, "
                f"{self.stalls} stalls, statuses {dict(self.statuses)}, {len(self.violations)} violations")


def schedule(seed: int, processes: int, duration: float) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    kinds = ["chat", "slow", "embed", "stream", "stream_cut", "cancel"]
    for _ in range(rng.randint(40, 90)):
        kind = rng.choices(kinds, weights=[5, 2, 2, 3, 1, 2])[0]
        events.append(Event(rng.uniform(0, duration), kind, rng.randrange(processes),
                            length=rng.uniform(0.05, 0.5), chunks=rng.randint(1, 4)))
    victims = list(range(1, processes))  # node 0 stays up: it answers the admin calls
    rng.shuffle(victims)
    if victims and rng.random() < 0.7:
        events.append(Event(rng.uniform(0.2, duration * 0.7), "kill", victims.pop(), length=rng.uniform(0.2, 1.0)))
    if victims and rng.random() < 0.6:  # stalled past the lease TTL, often: its lease is swept meanwhile
        events.append(Event(rng.uniform(0.2, duration * 0.7), "pause", victims.pop(), length=rng.uniform(0.3, LEASE_TTL * 2)))
    for _ in range(rng.randint(0, 2)):
        events.append(Event(rng.uniform(0, duration), "stall", length=rng.uniform(0.2, 1.5)))
    return sorted(events, key=lambda e: e.at)


class Simulator:
    def __init__(self, fleet: Fleet, database_url: str, engine: Any, *, duration: float = 4.0) -> None:
        self.fleet = fleet
        self.url = database_url
        self.db = engine
        self.duration = duration
        self.paused: set[int] = set()

    async def run(self, seed: int) -> Report:
        report = Report(seed)
        credit = random.Random(seed ^ 0x5EED).randint(300, 3_000)  # micros: often the bottom of the wallet is reached
        org = await self._org(seed, credit)
        events = schedule(seed, len(self.fleet.nodes), self.duration)
        outcomes: dict[str, tuple[str, int | None, int | None]] = {}
        started = time.monotonic()
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            tasks = []
            try:
                for index, event in enumerate(events):
                    await asyncio.sleep(max(0.0, started + event.at - time.monotonic()))  # the schedule's clock
                    tasks.append(asyncio.create_task(self._do(client, org, seed, index, event, report, outcomes)))
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                for task in tasks:
                    task.cancel()
                self._resume_all()
        await asyncio.to_thread(self._all_up)
        await self._check(org, credit, outcomes, report)
        return report

    # -- the schedule's actions ------------------------------------------------------------

    async def _org(self, seed: int, credit: int) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                self.fleet.nodes[0].url + "/api/admin/organizations",
                json={"name": f"Sim {seed} {time.time_ns()}", "credit": f"0.{credit:06d}"},
                headers={"authorization": f"Bearer {ADMIN}"},
            )
        assert response.status_code == 201, response.text
        return response.json()

    async def _do(self, client, org, seed, index, event, report, outcomes) -> None:
        node = self.fleet.nodes[event.node]
        if event.kind == "kill":
            report.kills += 1
            await asyncio.to_thread(self._kill_and_restart, node, event.length)
        elif event.kind == "pause":
            report.pauses += 1
            await self._pause(event.node, event.length)
        elif event.kind == "stall":
            report.stalls += 1
            await asyncio.to_thread(self._stall, org["organization_id"], event.length)
        else:
            report.requests += 1
            rid = f"sim{seed}-{index}"
            status, cost = await self._request(client, node, org["api_key"], rid, event)
            outcomes[rid] = (event.kind, status, cost)
            report.statuses[f"{event.kind}:{status}"] += 1

    async def _request(self, client, node: Node, key: str, rid: str, event: Event) -> tuple[int | None, int | None]:
        headers = {"authorization": f"Bearer {key}", "x-request-id": rid, "cache-control": "no-store"}
        if event.kind == "embed":
            path, body = "/v1/embeddings", {"model": "mock-embed", "input": f"embed {rid} " * 5}
        else:
            model = "mock-slow" if event.kind in ("slow", "cancel") else "mock-chat"
            path = "/v1/chat/completions"
            body = {"model": model, "messages": [{"role": "user", "content": f"say {rid} " * 6}], "max_tokens": 12}
            if event.kind.startswith("stream"):
                body.update(stream=True, stream_options={"include_usage": True})
        timeout = httpx.Timeout(event.length) if event.kind == "cancel" else httpx.Timeout(30)
        try:
            if not body.get("stream"):
                response = await client.post(node.url + path, json=body, headers=headers, timeout=timeout)
                cost = response.headers.get("x-aibroker-cost-micros")
                return response.status_code, int(cost) if cost is not None else None
            return await self._stream(client, node.url + path, body, headers, event)
        except httpx.TimeoutException:
            return -1, None  # the client left (a cancel, or a paused process)
        except httpx.HTTPError:
            return None, None  # the process died under it

    async def _stream(self, client, url, body, headers, event) -> tuple[int | None, int | None]:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                return response.status_code, None
            cost, lines = None, 0
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                lines += 1
                if event.kind == "stream_cut" and lines >= event.chunks:
                    return -1, None  # leave mid-stream: the connection drops
                chunk = json.loads(line[6:])
                if "aibroker" in chunk:
                    cost = chunk["aibroker"]["cost_micros"]
            return 200, cost

    def _kill_and_restart(self, node: Node, down: float) -> None:
        if node.process is None or node.process.poll() is not None:
            return
        self.fleet.kill(node)
        time.sleep(down)  # the fault's length: the process stays dead this long
        self.fleet.start(node)
        self.fleet.wait_ready(node)

    async def _pause(self, index: int, length: float) -> None:
        process = self.fleet.nodes[index].process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGSTOP)
        self.paused.add(index)
        try:
            await asyncio.sleep(length)  # the fault's length
        finally:
            self._resume(index)

    def _resume(self, index: int) -> None:
        process = self.fleet.nodes[index].process
        if index in self.paused and process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
        self.paused.discard(index)

    def _resume_all(self) -> None:
        for index in list(self.paused):
            self._resume(index)

    def _stall(self, organization_id: str, length: float) -> None:
        with wallet_locked(self.url, organization_id):
            time.sleep(length)  # the fault's length: the wallet stays locked this long

    def _all_up(self) -> None:
        for node in self.fleet.nodes:
            if node.process is None or node.process.poll() is not None:
                self.fleet.start(node)
            self.fleet.wait_ready(node)

    # -- the invariants --------------------------------------------------------------------

    async def _check(self, org, credit, outcomes, report: Report) -> None:
        org_id = org["organization_id"]
        # Idle leases go back within IDLE, a dead or swept one within a TTL and a sweep.
        deadline = time.monotonic() + IDLE + LEASE_TTL * 1.5 + 10
        while True:
            balance, held, holds = wallet_money(self.db, org_id)
            if held == 0 and holds == 0:
                break
            if time.monotonic() > deadline:
                with self.db.connect() as conn:
                    rows = conn.execute(text(
                        "SELECT h.request_id, h.amount_micros, h.expires_at FROM wallet_holds h"
                        " JOIN wallets w ON w.id = h.wallet_id WHERE w.organization_id = :o"), {"o": org_id}).all()
                report.violations.append(f"stuck: held {held} (holds {holds}) once idle: {rows}")
                break
            await asyncio.sleep(0.1)
        audit = await asyncio.to_thread(verify, self.db)
        report.violations.extend(f"verify-ledger: {p.detail}" for p in audit.problems if p.organization_id in (org_id, None))
        with self.db.connect() as conn:
            debited: dict[str, int] = dict(conn.execute(
                select(UsageRecord.request_id, func.sum(-LedgerEntry.amount_micros))
                .join(LedgerEntry, LedgerEntry.usage_record_id == UsageRecord.id)
                .where(UsageRecord.organization_id == org_id, LedgerEntry.kind == "debit")
                .group_by(UsageRecord.request_id)
            ).all())
        for rid, (kind, status, cost) in sorted(outcomes.items()):
            if status != 200 or (kind.startswith("stream") and cost is None):
                continue
            if not cost:
                report.violations.append(f"served unbilled: {rid} ({kind}) cost {cost}")
            elif debited.get(rid) != cost:
                report.violations.append(f"served without its debit: {rid} ({kind}) cost {cost}, debited {debited.get(rid)}")
        balance, _, _ = wallet_money(self.db, org_id)
        if balance < 0 or credit - balance != sum(debited.values()):
            report.violations.append(f"money: credit {credit}, balance {balance}, debits {sum(debited.values())}")

"""The crash test: 4 `aibroker serve` processes on one wallet under load, one killed with
SIGKILL mid-load. Its lease is back in the wallet within a lease TTL and a sweep (not the
15-minute hold TTL), the live processes' leases survive (renewed), `verify-ledger` is
clean, and every 200 that carries a cost header has its debit and usage record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from aibroker.models import LedgerEntry, UsageRecord, WalletHold
from tests.billing.conftest import ADMIN, run_cli
from tests.billing.fleet import Fleet, Outcome, in_flight
from tests.billing.stall import wallet_money
from tests.conftest import _truncate_pg

PROCESSES = 4
REQUESTS = 240
LEASE_TTL = 3.0
CREDIT = 10_000_000
BODY = {"model": "mock-slow", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


@pytest.fixture
def fleet(database_url: str, tmp_path: Path) -> Iterator[Fleet]:
    if not database_url.startswith("sqlite"):
        _truncate_pg(database_url)
    env = {
        "AIBROKER_LEASE_TTL_SECONDS": str(LEASE_TTL),
        "AIBROKER_LEASE_CHUNK_MICROS": "50000",  # far from the wallet's bottom: leases stay whole
    }
    with Fleet(database_url, tmp_path, mock_latency_ms=2500, processes=PROCESSES, env=env).running() as nodes:
        yield nodes



def _owners(db) -> set[str]:
    """The processes holding a lease (a lease row's request_id is its process)."""
    with db.connect() as conn:
        return set(conn.execute(select(WalletHold.request_id).distinct()).scalars())


async def _fire(fleet: Fleet, key: str) -> list[Outcome]:
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(i: int) -> Outcome:
            rid = f"crash-p{i % PROCESSES}-{i}"
            headers = {"authorization": f"Bearer {key}", "x-request-id": rid, "cache-control": "no-store"}
            try:
                response = await client.post(fleet.nodes[i % PROCESSES].url + "/v1/chat/completions", json=BODY, headers=headers)
            except httpx.HTTPError:
                return Outcome(rid, None, None, None)
            cost = response.headers.get("x-aibroker-cost-micros")
            return Outcome(rid, response.status_code, int(cost) if cost is not None else None, response.json())

        return list(await asyncio.gather(*(one(i) for i in range(REQUESTS))))


def test_a_killed_processs_lease_is_back_within_seconds(fleet, db):
    response = httpx.post(
        fleet.nodes[0].url + "/api/admin/organizations", json={"name": "Crash", "credit": str(CREDIT // 1_000_000)},
        headers={"authorization": f"Bearer {ADMIN}"}, timeout=30,
    )
    assert response.status_code == 201, response.text
    org = response.json()
    victim = fleet.nodes[1]
    back_after: dict[str, float] = {}

    async def load_kill_and_watch() -> list[Outcome]:
        load = asyncio.ensure_future(_fire(fleet, org["api_key"]))
        async with httpx.AsyncClient(timeout=5) as client:
            deadline = time.monotonic() + 30
            while await in_flight(client, victim) < 10 or len(_owners(db)) < PROCESSES:
                assert time.monotonic() < deadline, "the load never reached every process"
                await asyncio.sleep(0.02)
        before = _owners(db)
        fleet.kill(victim)
        killed = time.monotonic()
        while True:  # exactly one process's lease goes; the live ones' are renewed and stay
            gone = before - _owners(db)
            if gone:
                assert len(gone) == 1, gone
                back_after["seconds"] = time.monotonic() - killed
                back_after["live_owners"] = len(before & _owners(db))
                break
            assert time.monotonic() - killed < 30, "the dead process's lease was never released"
            await asyncio.sleep(0.05)
        return await load

    outcomes = asyncio.run(load_kill_and_watch())
    # Back within a lease TTL plus a sweep period (TTL / 2), with slack for a busy machine.
    assert back_after["seconds"] < LEASE_TTL * 1.5 + 5, back_after
    assert back_after["live_owners"] == PROCESSES - 1
    broken = [o for o in outcomes if o.status is None]
    served = [o for o in outcomes if o.status == 200]
    assert broken and all(o.request_id.startswith("crash-p1-") for o in broken)
    assert {o.status for o in outcomes} <= {200, None}

    with db.connect() as conn:
        debits = dict(
            conn.execute(
                select(UsageRecord.request_id, LedgerEntry.amount_micros)
                .join(LedgerEntry, LedgerEntry.usage_record_id == UsageRecord.id)
                .where(LedgerEntry.kind == "debit")
            ).all()
        )
        spent = conn.execute(select(func.sum(LedgerEntry.amount_micros)).where(LedgerEntry.kind == "debit")).scalar()
    for o in served:  # no served response lacks its debit and usage record
        assert o.cost is not None and o.cost > 0 and debits.get(o.request_id) == -o.cost, o.request_id
    balance, held, holds = wallet_money(db, org["organization_id"])
    assert balance == CREDIT + spent and held == holds
    assert run_cli(fleet.env["AIBROKER_DATABASE_URL"], "verify-ledger").returncode == 0
    fleet.stop_all()  # the live processes give their leases back on the way out
    assert wallet_money(db, org["organization_id"]) == (balance, 0, 0)

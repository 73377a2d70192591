"""Several real `aibroker serve` processes on one PostgreSQL wallet: never overspent under
concurrency, and nothing lost when a process is killed with SIGKILL mid-load.

PostgreSQL only: without AIBROKER_TEST_DATABASE_URL these tests are not generated.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from aibroker.db import make_sync_engine
from aibroker.models import LedgerEntry, UsageRecord, Wallet, WalletHold
from tests.billing.conftest import ADMIN, cli_json, run_cli
from tests.billing.fleet import PROCESSES, Fleet, Outcome, in_flight, lease_held, wallet_once_leases_return
from tests.conftest import PG_URL, _truncate_pg

REQUESTS = 300


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
        latency = getattr(request, "param", 0)
        # The crash test below sweeps by hand: a long lease TTL keeps the live processes' own
        # sweepers from releasing the dead one's leases first (tests/billing/test_crash.py
        # covers the short TTL).
        # A chunk far below the wallet keeps leases whole (a lease near the wallet's bottom
        # gives its free money back at once, which would change the sum swept below).
        env = {"AIBROKER_LEASE_TTL_SECONDS": "600", "AIBROKER_LEASE_CHUNK_MICROS": "20000"} if latency else None
        nodes = Fleet(pg_migrated, tmp_path, mock_latency_ms=latency, env=env)
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

        wallet = wallet_once_leases_return(db, org["organization_id"])
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
                while await in_flight(client, victim) < 20 or not lease_held(db):
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


"""The bottom of a wallet, across processes: a small wallet spread over 4 `aibroker serve`
processes is spent down to the last request's cost by every one of them. A request is
refused 402 only when the balance, less other requests in flight, cannot cover it; idle
lease money in the other processes comes back for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.billing.conftest import ADMIN, run_cli
from tests.billing.fleet import Fleet
from tests.billing.stall import wallet_money
from tests.conftest import _truncate_pg

PROCESSES = 4
PER_PROCESS = 150
CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
EMBED = {"model": "mock-embed", "input": "hi"}
CREDIT = 1_600  # micros: about 100 requests at their real price (16)
NO_CACHE = {"cache-control": "no-store"}  # every request reaches the (mock) provider and is billed


@pytest.fixture
def fleet(database_url: str, tmp_path: Path) -> Iterator[Fleet]:
    if not database_url.startswith("sqlite"):
        _truncate_pg(database_url)
    with Fleet(database_url, tmp_path, mock_latency_ms=0, processes=PROCESSES).running() as nodes:
        yield nodes



def _org(fleet: Fleet) -> dict:
    response = httpx.post(
        fleet.nodes[0].url + "/api/admin/organizations", json={"name": "Bottom", "credit": f"0.{CREDIT:06d}"},
        headers={"authorization": f"Bearer {ADMIN}"}, timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _load(fleet: Fleet, key: str) -> list[list[int]]:
    """PER_PROCESS chat requests to each process, 8 at a time per process."""
    async with httpx.AsyncClient(timeout=60, headers={"authorization": f"Bearer {key}", **NO_CACHE}) as client:

        async def node_load(url: str) -> list[int]:
            gate = asyncio.Semaphore(8)

            async def one() -> int:
                async with gate:
                    return (await client.post(url + "/v1/chat/completions", json=CHAT)).status_code

            return list(await asyncio.gather(*(one() for _ in range(PER_PROCESS))))

        return list(await asyncio.gather(*(node_load(node.url) for node in fleet.nodes)))


def test_every_process_spends_the_wallet_down_to_the_last_request(fleet, db):
    org = _org(fleet)
    org_id, key = org["organization_id"], org["api_key"]
    statuses = asyncio.run(_load(fleet, key))
    served = [s.count(200) for s in statuses]
    assert all(set(s) <= {200, 402} for s in statuses), statuses
    assert all(count > 0 for count in served), f"a process starved: served {served}"

    # One request at a time, each process in turn: with nothing else in flight, a 402 must
    # mean the balance itself cannot pay; whatever the others lease comes back for it.
    headers = {"authorization": f"Bearer {key}", **NO_CACHE}
    refused_everywhere = {"chat": set(), "embed": set()}
    turn = 0
    with httpx.Client(timeout=30, headers=headers) as client:
        while len(refused_everywhere["chat"]) < PROCESSES or len(refused_everywhere["embed"]) < PROCESSES:
            node = fleet.nodes[turn % PROCESSES]
            kind = "chat" if len(refused_everywhere["chat"]) < PROCESSES else "embed"
            path, body = ("/v1/chat/completions", CHAT) if kind == "chat" else ("/v1/embeddings", EMBED)
            balance, _, _ = wallet_money(db, org_id)
            response = client.post(node.url + path, json=body)
            if response.status_code == 402:
                error = response.json()["error"]
                assert error["required_micros"] > balance, (kind, turn, error, balance)
                refused_everywhere[kind].add(turn % PROCESSES)
            else:
                assert response.status_code == 200, response.text
                refused_everywhere[kind].clear()
            turn += 1
            assert turn < 1_000, (kind, response.status_code, response.text[:300], balance, refused_everywhere)
    balance, held, holds = wallet_money(db, org_id)
    assert 0 <= balance < error["required_micros"]  # not even the smallest request's bound is left
    assert held == holds
    assert run_cli(fleet.env["AIBROKER_DATABASE_URL"], "verify-ledger").returncode == 0

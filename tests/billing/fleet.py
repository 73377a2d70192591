"""A fleet of real `aibroker serve` processes on one database, for the multiprocess money
tests: started and stopped by pid (only the ones a test started; never left running)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select

from aibroker.models import Wallet, WalletHold
from tests.billing.conftest import NO_LIMITS
from tests.support import fleet as support
from tests.support.fleet import Node

__all__ = ["Fleet", "Node", "Outcome", "PROCESSES", "in_flight", "lease_held", "wallet_once_leases_return"]

PROCESSES = 3


class Fleet(support.Fleet):
    """The money tests' fleet: limits off, the mock's latency set, leases idle quickly
    unless the upstream is slow."""

    def __init__(
        self, url: str, logs: Path, mock_latency_ms: int, *, processes: int = PROCESSES, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(url, logs, processes, {
            "AIBROKER_MOCK_LATENCY_MS": str(mock_latency_ms),
            # With slow upstreams (the crash test) no lease goes back on its own mid-test, so
            # the holds left behind are exactly the ones the sweeper must release.
            "AIBROKER_LEASE_IDLE_SECONDS": "3600" if mock_latency_ms else "1",
            **NO_LIMITS,
            **(env or {}),
        })


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



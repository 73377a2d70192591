"""A cold burst on PostgreSQL: 4 fresh `aibroker serve` processes (empty caches), ~600
concurrent requests spread over them with 40 distinct API keys (cold lookups of different
keys cannot share one query), against a role whose CONNECTION LIMIT the unbounded pools
would exhaust. No response is a 500: every answer is a 200 with its usage record and debit,
or a 503 `database_busy` with Retry-After (unbilled); the ledger verifies.

The same burst runs on SQLite (4 processes on one file: no connection limit there, but a
write lock they all share). The PostgreSQL test is generated only with AIBROKER_TEST_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from aibroker.db import Database, make_sync_engine
from aibroker.models import LedgerEntry, UsageRecord
from aibroker.tenancy.service import create_api_key
from tests.conftest import PG_URL, _truncate_pg
from tests.ops.fleet import Fleet, cli_json, run_cli

PROCESSES = 4
REQUESTS = 600
ROLE = "aibroker_burst"
ROLE_LIMIT = 40  # connections the role may hold at once: far below 4 x 38 unbounded pools
PER_PROCESS = 8  # AIBROKER_DB_MAX_CONNECTIONS: 4 x 8 = 32 stays under the role's limit
KEYS = 40  # distinct API keys: cold lookups of different keys cannot share a query


def _limited_role_url(pg_url: str) -> str:
    """A login role with a small CONNECTION LIMIT on the test database (superusers are exempt
    from such limits, so the brokers connect as this role, not as the test's own)."""
    admin = make_sync_engine(pg_url, pooled=False)
    with admin.begin() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": ROLE}).scalar()
        conn.execute(text(f"{'ALTER' if exists else 'CREATE'} ROLE {ROLE} LOGIN CONNECTION LIMIT {ROLE_LIMIT}"))
        conn.execute(text(f"GRANT ALL ON SCHEMA public TO {ROLE}"))
        conn.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {ROLE}"))
        conn.execute(text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {ROLE}"))
    admin.dispose()
    return make_url(pg_url).set(username=ROLE, password=None).render_as_string(hide_password=False)


class PeakConnections:
    """The most connections the role held at once while the burst ran (pg_stat_activity)."""

    def __init__(self, pg_url: str) -> None:
        self.engine = make_sync_engine(pg_url, pooled=False)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with self.engine.connect() as conn:
            while not self._stop.wait(0.02):  # a sampling period, not a wait for a condition
                now = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE usename = :r"), {"r": ROLE}).scalar()
                conn.commit()
                self.peak = max(self.peak, int(now or 0))

    def __enter__(self) -> PeakConnections:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.engine.dispose()


async def _more_keys(url: str, organization_id: str, count: int) -> list[str]:
    db = Database(url)
    try:
        async with db.sessions() as session:
            keys = [(await create_api_key(session, organization_id=organization_id, name=f"k{i}")).key for i in range(count)]
            await session.commit()
    finally:
        await db.dispose()
    return keys


async def _burst(fleet: Fleet, keys: list[str]) -> list[tuple[str, httpx.Response]]:
    body = {"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(i: int) -> tuple[str, httpx.Response]:
            rid = f"burst-{i}"
            node = fleet.nodes[i % PROCESSES]  # every node sees every key, each about 4 times
            headers = {"authorization": f"Bearer {keys[(i // PROCESSES) % len(keys)]}", "x-request-id": rid}
            return rid, await client.post(node.url + "/v1/chat/completions", json=body, headers=headers)

        return await asyncio.gather(*(one(i) for i in range(REQUESTS)))


def _cold_burst(admin_url: str, broker_url: str, logs: Path) -> tuple[list[tuple[str, httpx.Response]], int]:
    """The organization and its keys are created before any broker runs: every cache is cold.
    Returns the answers and the most connections the brokers held at once (PostgreSQL)."""
    # The unlimited plan: admission still looks the tenant up (its settings are cached cold too),
    # but no rate limit refuses part of the burst.
    org = cli_json(admin_url, "org", "create", "Burst", "--plan", "unlimited", "--credit", "10", "--json")
    keys = [org["api_key"], *asyncio.run(_more_keys(admin_url, org["organization_id"], KEYS - 1))]
    fleet = Fleet(broker_url, logs, PROCESSES, {"AIBROKER_DB_MAX_CONNECTIONS": str(PER_PROCESS)})
    peak = PeakConnections(admin_url) if admin_url.startswith("postgres") else None
    try:
        fleet.start_all()
        if peak is not None:
            with peak:
                answers = asyncio.run(_burst(fleet, keys))
        else:
            answers = asyncio.run(_burst(fleet, keys))
    finally:
        fleet.stop_all()
    statuses = Counter(r.status_code for _, r in answers)
    assert set(statuses) <= {200, 503}, (statuses, fleet.tail())
    return answers, peak.peak if peak is not None else 0


def _check(admin_url: str, answers: list[tuple[str, httpx.Response]]) -> None:
    """No 500; every 503 is database_busy with Retry-After and unbilled; every 200 has its
    usage record and debit; the ledger verifies."""
    for _, response in answers:
        if response.status_code == 503:
            error = response.json()["error"]
            assert error["type"] == "database_busy" and error["code"] == "database_busy", error
            assert int(response.headers["retry-after"]) >= 1
    assert any(r.status_code == 200 for _, r in answers)
    db = make_sync_engine(admin_url, pooled=False)
    try:
        with db.connect() as conn:
            records = {
                rid: (status, billed)
                for rid, status, billed in conn.execute(
                    select(UsageRecord.request_id, UsageRecord.status, UsageRecord.billed_cost_micros)
                )
            }
            debits = dict(
                conn.execute(
                    select(UsageRecord.request_id, func.sum(LedgerEntry.amount_micros))
                    .join(LedgerEntry, LedgerEntry.usage_record_id == UsageRecord.id)
                    .where(LedgerEntry.kind == "debit")
                    .group_by(UsageRecord.request_id)
                ).all()
            )
    finally:
        db.dispose()
    for rid, response in answers:
        if response.status_code == 200:  # served: recorded and debited what its header says
            cost = int(response.headers["x-aibroker-cost-micros"])
            assert records.get(rid) == ("success", cost), rid
            assert debits.get(rid) == -cost, rid
        else:  # refused for a busy database: never billed; recorded when it had an organization
            assert rid not in debits, rid
            assert records.get(rid, ("refused", 0)) in {("refused", 0), ("error", 0)}, rid
    assert run_cli(admin_url, "verify-ledger").returncode == 0


def test_cold_burst_on_sqlite_gives_no_500(sqlite_template: Path, tmp_path: Path):
    path = tmp_path / "burst.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    answers, _ = _cold_burst(url, url, tmp_path)
    _check(url, answers)


if PG_URL:

    @pytest.fixture
    def burst_url(pg_migrated: str) -> str:
        _truncate_pg(pg_migrated)
        return _limited_role_url(pg_migrated)

    def test_cold_burst_on_a_connection_limited_role_gives_no_500(burst_url: str, tmp_path: Path):
        answers, peak = _cold_burst(PG_URL, burst_url, tmp_path)
        assert peak <= PROCESSES * PER_PROCESS, peak
        _check(PG_URL, answers)

"""Wallet leases under cancellation, crashes and stalls (billing/leases.py), on a real
database: a lease being taken when its request is cancelled is still recorded and given
back; a dead process's lease expires within its short TTL and the sweeper returns it; a
lease swept while its process stalled is never spent afterwards."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from aibroker.billing.batch import HoldRefused, Settle
from aibroker.billing.leases import LeaseBook, LocalHold
from aibroker.billing.writer import MoneyWriter
from aibroker.db import make_sync_engine
from aibroker.kit.ids import new_id
from tests.billing.conftest import run_cli
from tests.billing.stall import wallet_locked, wallet_money

CREDIT = 10_000_000


@pytest.fixture
def wallet(broker):
    org = broker.create_org("Leases", credit="10")
    broker.flush()
    return org["organization_id"]


@pytest.fixture
def engine(broker):
    engine = make_sync_engine(broker.database_url, pooled=False)
    yield engine
    engine.dispose()


def _book(database_url: str, *, ttl: float = 20.0, chunk: int = 100_000) -> tuple[MoneyWriter, LeaseBook]:
    writer = MoneyWriter(make_sync_engine(database_url, immediate=True), lease_ttl_seconds=ttl)
    writer.start()
    return writer, LeaseBook(writer, chunk_micros=chunk, idle_seconds=3600, renew_seconds=ttl / 3)


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _usage_row(org_id: str) -> dict:
    return {"id": new_id("usage"), "request_id": new_id("req"), "organization_id": org_id, "endpoint": "chat",
            "provider": "mock", "model": "mock-chat", "status": "success", "input_tokens": 1, "output_tokens": 1}


def test_requests_cancelled_while_a_slow_lease_is_taken_orphan_nothing(broker, wallet, engine):
    async def scenario() -> None:
        writer, book = _book(broker.database_url)
        try:
            with wallet_locked(broker.database_url, wallet):  # the lease's transaction waits on this lock
                tasks = [asyncio.create_task(book.reserve(wallet, 1_000 + i)) for i in range(20)]
                await _until(lambda: not writer._idle.is_set())  # the lease op is queued or being written
                await asyncio.sleep(0)
                for task in tasks:
                    task.cancel()
                outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
            await writer.drain()
            balance, held, holds = wallet_money(engine, wallet)
            known = sum(leased for _, leased in book.known().values())
            assert held == holds == known > 0  # the committed lease is this process's, on its books
            # ... and the gone requests' reservations went back to it: the whole lease is free.
            hold = await book.reserve(wallet, known)
            assert isinstance(hold, LocalHold)
            book.release(hold)
            await book.close()
            await writer.drain()
            assert wallet_money(engine, wallet) == (CREDIT, 0, 0)  # all money returns
        finally:
            await writer.aclose()

    asyncio.run(scenario())


def test_a_dead_processs_lease_is_swept_within_its_ttl(broker, wallet, engine):
    ttl = 1.0

    async def scenario() -> None:
        writer, book = _book(broker.database_url, ttl=ttl)
        sweeper, _ = _book(broker.database_url, ttl=ttl)  # another live process's writer
        try:
            assert isinstance(await book.reserve(wallet, 5_000), LocalHold)
            _, held, _ = wallet_money(engine, wallet)
            assert held >= 5_000
            died = time.monotonic()  # the process dies: no renewal, no give-back
            released = 0
            while released < held:
                released += await sweeper.sweep()
                assert time.monotonic() - died < ttl + 5, "the dead process's lease was not swept in time"
                await asyncio.sleep(0.05)
            assert wallet_money(engine, wallet) == (CREDIT, 0, 0)
        finally:
            await writer.aclose()
            await sweeper.aclose()

    asyncio.run(scenario())


def test_a_live_process_renews_its_lease_well_within_the_ttl(broker, wallet, engine):
    ttl = 1.0

    async def scenario() -> None:
        writer, book = _book(broker.database_url, ttl=ttl)
        upkeep = asyncio.create_task(book.run(interval=0.05))
        try:
            hold = await book.reserve(wallet, 5_000)
            assert isinstance(hold, LocalHold)
            started = time.monotonic()
            while time.monotonic() - started < 3 * ttl:  # a long request: its lease must survive
                assert await writer.sweep() == 0
                await asyncio.sleep(0.1)
            assert isinstance(await book.reserve(wallet, 1_000), LocalHold)
        finally:
            upkeep.cancel()
            await book.close()
            await writer.aclose()

    asyncio.run(scenario())


def test_a_lease_swept_while_its_process_stalled_is_never_spent_again(broker, wallet, engine):
    ttl = 1.0

    async def scenario() -> None:
        writer, book = _book(broker.database_url, ttl=ttl)
        other, _ = _book(broker.database_url, ttl=ttl)
        try:
            first = await book.reserve(wallet, 5_000)
            assert isinstance(first, LocalHold)
            # The process stalls (no upkeep) past its TTL; another process sweeps the lease.
            swept = 0
            while not swept:
                swept = await other.sweep()
                await asyncio.sleep(0.05)
            assert wallet_money(engine, wallet) == (CREDIT, 0, 0)
            # Awake again: a new request must not be reserved from the swept lease.
            second = await book.reserve(wallet, 2_000)
            assert isinstance(second, LocalHold) and second.lease_id != first.lease_id
            _, held, holds = wallet_money(engine, wallet)
            assert held == holds == sum(leased for _, leased in book.known().values())
            # The request reserved before the sweep settles anyway: debited in full from the
            # available balance, with its usage record; nothing overspent, the ledger clean.
            settled = await writer.submit(
                Settle(wallet, _usage_row(wallet), hold_id=first.lease_id, debit=3_000, from_lease=True)
            )
            book.settled(first, settled)
            assert settled.hold_missing and settled.debited == 3_000
            book.release(second)
            await book.close()
            await writer.drain()
            assert wallet_money(engine, wallet) == (CREDIT - 3_000, 0, 0)
        finally:
            await writer.aclose()
            await other.aclose()
        assert run_cli(broker.database_url, "verify-ledger").returncode == 0

    asyncio.run(scenario())


def test_a_refusal_still_says_what_is_available(broker, engine):
    org = broker.create_org("Tiny", credit="0.0001")["organization_id"]

    async def scenario() -> None:
        writer, book = _book(broker.database_url)
        try:
            refused = await book.reserve(org, 1_000)
            assert isinstance(refused, HoldRefused) and (refused.available, refused.required) == (100, 1_000)
        finally:
            await book.close()
            await writer.aclose()

    asyncio.run(scenario())


def test_clients_leaving_during_a_slow_lease_leave_no_money_stuck(broker, wallet, engine):
    """Through the broker: 20 clients leave while their process waits on the lease's write."""
    org_key = broker.create_org("Leaving", credit="1")
    org_id = org_key["organization_id"]
    body = {"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}

    async def leave_early() -> None:
        async with httpx.AsyncClient(base_url=broker.url, timeout=0.5, headers={"authorization": f"Bearer {org_key['api_key']}"}) as client:
            results = await asyncio.gather(
                *(client.post("/v1/chat/completions", json=body) for _ in range(20)), return_exceptions=True
            )
        assert all(isinstance(r, httpx.TimeoutException) for r in results), results

    with wallet_locked(broker.database_url, org_id):  # the lease's transaction waits on this lock
        asyncio.run(leave_early())
    deadline = time.monotonic() + 15
    while True:  # the cancelled requests' lease is on the process's books: flush gives it back
        broker.flush()
        if wallet_money(engine, org_id) == (1_000_000, 0, 0):
            break
        assert time.monotonic() < deadline, wallet_money(engine, org_id)
        time.sleep(0.05)


def test_a_lease_due_for_renewal_is_renewed_by_the_next_request_not_grown(broker, wallet, engine):
    ttl = 1.0

    async def scenario() -> None:
        writer, book = _book(broker.database_url, ttl=ttl)
        try:
            first = await book.reserve(wallet, 5_000)
            assert isinstance(first, LocalHold)
            _, held, _ = wallet_money(engine, wallet)
            await _until(lambda: not book._fits(book._leases[wallet], 1_000))  # half a TTL without upkeep
            again = await book.reserve(wallet, 1_000)
            assert isinstance(again, LocalHold) and again.lease_id == first.lease_id
            assert wallet_money(engine, wallet)[1:] == (held, held)  # renewed in place, nothing more taken
            book.release(first)
            book.release(again)
            await book.close()
            await writer.drain()
            assert wallet_money(engine, wallet) == (CREDIT, 0, 0)
        finally:
            await writer.aclose()

    asyncio.run(scenario())

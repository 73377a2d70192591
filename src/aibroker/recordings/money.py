"""The processing job's hold: its whole estimated cost taken from the wallet before the
first AI call, as a wallet lease of its own.

The job gets a LeaseBook of its own (one lease row, owned by this job) and a shallow copy
of the gateway that reserves from it: every segment's call reserves its bound inside that
lease and settles against it, so nothing the job needs can be spent by other traffic
meanwhile, and the job cannot spend more than the balance. Too little balance refuses at
the start (402 -> the recording fails `insufficient_balance`) before anything is billed.
The lease is renewed while the job runs; when a worker dies its lease expires
(AIBROKER_LEASE_TTL_SECONDS) and the sweeper gives the money back."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from typing import Any

from aibroker.billing.batch import HoldRefused
from aibroker.billing.leases import LeaseBook
from aibroker.errors import InsufficientBalance
from aibroker.gateway.service import Gateway
from aibroker.kit.money import format_micros


async def _renew(book: LeaseBook, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await book.renew()
        except Exception:  # noqa: BLE001 - the next renewal tries again; the TTL covers a miss
            pass


@contextlib.asynccontextmanager
async def job_hold(gateway: Gateway, organization_id: str, amount: int) -> AsyncIterator[Gateway]:
    """A gateway whose calls spend from `amount` held for this job (402 when it cannot be held)."""
    if gateway.leases is None or amount <= 0:  # the ledger is off: nothing to hold
        yield gateway
        return
    writer: Any = gateway.writer
    ttl = float(writer.lease_ttl)
    book = LeaseBook(writer, chunk_micros=amount, idle_seconds=10**9, renew_seconds=ttl / 3,
                     lease_ttl_seconds=ttl, refused_wait_seconds=0)
    held = await book.reserve(organization_id, amount)
    if isinstance(held, HoldRefused):
        raise InsufficientBalance(
            f"Processing this recording needs up to {format_micros(amount)} but {format_micros(held.available)} "
            "is available. Top up the wallet, then reprocess it.",
            code="insufficient_balance", extra={"available_micros": held.available, "required_micros": amount},
        )
    book.release(held)  # the lease keeps the money; the calls reserve from it one by one
    scoped = copy.copy(gateway)
    scoped.leases = book
    renewal = asyncio.create_task(_renew(book, ttl / 3))
    try:
        yield scoped
    finally:
        renewal.cancel()
        await asyncio.shield(book.close())

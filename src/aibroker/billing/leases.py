"""Per-process wallet leases: reserve requests in memory, exactly.

A process holds a lease on each busy wallet: money moved from the wallet's available
balance into `held` in the database (a wallet_holds row), atomically like any hold.
Requests then reserve from that lease in memory, with no database round trip; their
settlement spends from the lease row and debits the balance in one transaction. The
database never lets leases exceed the balance, and a process never reserves more than
its leases hold, so no wallet is overspent however many processes serve it.

Idle leases go back to the wallet within a couple of seconds, and near the bottom of a
wallet a lease takes at most half of what is left, so other processes still find money.
A crashed process's leases expire (hold TTL) and the sweeper releases them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aibroker.billing.batch import (
    HoldRefused,
    Lease,
    LeaseGranted,
    Renew,
    Settled,
    Unlease,
)
from aibroker.billing.writer import MoneyWriter
from aibroker.kit.ids import new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LocalHold:
    """One request's reservation inside its process's lease."""

    organization_id: str
    lease_id: str
    amount: int


@dataclass(slots=True)
class _Lease:
    lease_id: str | None = None
    leased: int = 0  # what the database holds for this process
    reserved: int = 0  # what in-flight requests have taken from it
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LeaseBook:
    def __init__(self, writer: MoneyWriter, *, chunk_micros: int, idle_seconds: float, renew_seconds: float) -> None:
        self._writer = writer
        self._chunk = chunk_micros
        self._idle = idle_seconds
        self._renew_every = renew_seconds
        self._owner = "lease:" + new_id("proc")
        self._leases: dict[str, _Lease] = {}
        self._last_renew = time.monotonic()

    async def reserve(self, organization_id: str, amount: int) -> LocalHold | HoldRefused:
        lease = self._leases.get(organization_id)
        if lease is None:
            lease = self._leases[organization_id] = _Lease()
        lease.last_used = time.monotonic()
        if lease.lease_id and lease.leased - lease.reserved >= amount:
            lease.reserved += amount
            return LocalHold(organization_id, lease.lease_id, amount)
        async with lease.lock:  # one extension at a time per wallet; others re-check after it
            free = lease.leased - lease.reserved
            if lease.lease_id and free >= amount:
                lease.reserved += amount
                return LocalHold(organization_id, lease.lease_id, amount)
            need = amount - max(free, 0) if lease.lease_id else amount
            result = await self._writer.submit(
                Lease(organization_id, lease.lease_id, need=need, want=max(need, self._chunk), owner=self._owner)
            )
            if isinstance(result, HoldRefused):
                free_here = max(free, 0) if lease.lease_id else 0
                return HoldRefused(available=result.available + free_here, required=amount)
            assert isinstance(result, LeaseGranted)
            if result.lease_id != lease.lease_id:  # a new lease row (first, or the old one was swept)
                lease.lease_id, lease.leased = result.lease_id, 0
            lease.leased += result.granted
            lease.reserved += amount
            return LocalHold(organization_id, result.lease_id, amount)

    def settled(self, hold: LocalHold, outcome: Settled | BaseException | Any) -> None:
        """The request's settlement committed (or failed): its reservation ends."""
        lease = self._leases.get(hold.organization_id)
        if lease is None or lease.lease_id != hold.lease_id:
            return
        lease.reserved -= hold.amount
        if isinstance(outcome, Settled):
            lease.leased -= outcome.debited
            if outcome.hold_missing:  # swept while we were stalled: start a fresh lease
                lease.lease_id, lease.leased = None, 0
        lease.last_used = time.monotonic()

    def release(self, hold: LocalHold) -> None:
        """A failed call: the reservation goes back to the lease; nothing was spent."""
        lease = self._leases.get(hold.organization_id)
        if lease is not None and lease.lease_id == hold.lease_id:
            lease.reserved -= hold.amount

    async def tidy(self, *, force: bool = False) -> None:
        """Give back idle leases; renew the others' expiry."""
        now = time.monotonic()
        for org, lease in list(self._leases.items()):
            idle = lease.reserved == 0 and (force or now - lease.last_used >= self._idle)
            if idle and lease.lease_id and not lease.lock.locked():
                lease_id, leased = lease.lease_id, lease.leased
                del self._leases[org]
                await self._writer.submit(Unlease(org, lease_id, leased))
        if force or now - self._last_renew >= self._renew_every:
            self._last_renew = now
            live = [lease.lease_id for lease in self._leases.values() if lease.lease_id]
            if live:
                await self._writer.submit(Renew("", live))

    async def run(self, interval: float = 0.5) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tidy()
            except Exception:
                log.exception("lease upkeep failed")

    async def close(self) -> None:
        """Give every lease back (shutdown): in-flight requests have finished by now."""
        with contextlib.suppress(Exception):
            await self.tidy(force=True)

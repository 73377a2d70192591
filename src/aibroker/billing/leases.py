"""Per-process wallet leases: reserve requests in memory, exactly.

A process holds a lease on each busy wallet: money moved from the wallet's available
balance into `held` in the database (a wallet_holds row), atomically like any hold.
Requests then reserve from that lease in memory, with no database round trip; their
settlement spends from the lease row and debits the balance in one transaction. The
database never lets leases exceed the balance, and a process never reserves more than
its leases hold, so no wallet is overspent however many processes serve it.

Crashes. A lease row expires AIBROKER_LEASE_TTL_SECONDS after its last write; the live
process renews it every ttl/3, and the sweeper releases expired ones, so a dead process's
lease is back in the wallet within a lease TTL plus a sweep. A process reserves locally
only while its last confirmed write is younger than half the TTL: a process stalled long
enough for its lease to be swept never spends that lease afterwards (it goes back to the
database, which grants a new row or refuses).

Cancellation. Growing a lease runs in its own task, shielded from the request: a client
leaving mid-lease cannot orphan the money the database just granted; the grant is
recorded, and the gone request's reservation goes straight back to the lease.

The bottom of a wallet. Once the wallet's available money falls below one lease chunk,
the lease is "low": it grows by exactly what a request needs, and its free money goes
back to the wallet at once (every upkeep tick) instead of after the idle delay. A request
refused while the wallet's balance could pay it (others hold the money, in flight or in
their leases) retries for a moment, so every process can spend down to the last request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aibroker.billing.batch import (
    HoldRefused,
    Lease,
    LeaseGranted,
    Renew,
    Renewed,
    Settled,
    Unlease,
)
from aibroker.billing.writer import MoneyWriter
from aibroker.kit.ids import new_id

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.05  # between attempts of a request refused while others hold the money


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
    valid_until: float = 0.0  # monotonic: reserve locally only before this (half a TTL after a confirmed write)
    low: bool = False  # the wallet is near empty: free money goes back at once
    refused: tuple[float, int, HoldRefused] | None = None  # (answered at, need, answer): shared by requests that overlapped it
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def reset(self) -> None:
        self.lease_id, self.leased, self.reserved, self.valid_until = None, 0, 0, 0.0


class LeaseBook:
    def __init__(
        self, writer: MoneyWriter, *, chunk_micros: int, idle_seconds: float, renew_seconds: float,
        lease_ttl_seconds: float | None = None, refused_wait_seconds: float | None = None,
    ) -> None:
        self._writer = writer
        self._chunk = chunk_micros
        self._idle = idle_seconds
        self._renew_every = renew_seconds
        self._ttl = lease_ttl_seconds if lease_ttl_seconds is not None else writer.lease_ttl
        # How long a refused request waits for others' free money: their idle leases go
        # back within `idle_seconds`, low ones at the next upkeep tick.
        self._refused_wait = refused_wait_seconds if refused_wait_seconds is not None else min(idle_seconds + 0.5, 3.0)
        self._owner = "lease:" + new_id("proc")
        self._leases: dict[str, _Lease] = {}
        self._last_renew = time.monotonic()

    # -- requests -------------------------------------------------------------------------

    async def reserve(self, organization_id: str, amount: int) -> LocalHold | HoldRefused:
        lease = self._leases.get(organization_id)
        if lease is None:
            lease = self._leases[organization_id] = _Lease()
        lease.last_used = time.monotonic()
        if self._fits(lease, amount):
            return self._take(organization_id, lease, amount)
        deadline = time.monotonic() + self._refused_wait
        while True:
            task = asyncio.ensure_future(self._grow(organization_id, lease, amount, time.monotonic()))
            try:
                result = await asyncio.shield(task)
            except asyncio.CancelledError:
                task.add_done_callback(self._undo)  # the grant is recorded; the gone request's share returns
                raise
            if not isinstance(result, HoldRefused):
                return result
            if result.balance < amount or time.monotonic() >= deadline:
                return result  # the balance itself cannot pay, or others still hold the money
            await asyncio.sleep(RETRY_SECONDS)

    def _fits(self, lease: _Lease, amount: int) -> bool:
        return bool(lease.lease_id) and time.monotonic() < lease.valid_until and lease.leased - lease.reserved >= amount

    def _take(self, organization_id: str, lease: _Lease, amount: int) -> LocalHold:
        assert lease.lease_id is not None
        lease.reserved += amount
        return LocalHold(organization_id, lease.lease_id, amount)

    async def _grow(self, organization_id: str, lease: _Lease, amount: int, asked: float) -> LocalHold | HoldRefused:
        """Extend (or open) the lease so `amount` fits, and reserve it. Runs as its own task.
        `asked`: when the request asked; one that overlapped a refusal for as much shares it."""
        async with lease.lock:  # one extension at a time per wallet; others re-check after it
            if self._fits(lease, amount):
                return self._take(organization_id, lease, amount)
            free = max(lease.leased - lease.reserved, 0) if lease.lease_id else 0
            need = max(amount - free, 0)  # 0: the lease has room but is due for renewal; the write renews it
            submitted = time.monotonic()
            if lease.refused and asked < lease.refused[0] and need >= lease.refused[1]:
                seen = lease.refused[2]  # just refused for as much: no need to ask the database again
                return HoldRefused(available=seen.available, required=amount, balance=seen.balance)
            want = need if lease.low or need == 0 else max(need, self._chunk)
            result = await self._writer.submit(
                Lease(organization_id, lease.lease_id, need=need, want=want, owner=self._owner, full=amount)
            )
            if isinstance(result, HoldRefused):
                lease.low = True
                refused = HoldRefused(available=result.available + free, required=amount, balance=result.balance)
                lease.refused = (time.monotonic(), need, refused)
                return refused
            lease.refused = None
            assert isinstance(result, LeaseGranted)
            if result.lease_id != lease.lease_id:
                # A new row (the first, or the old one was swept): the old row's in-flight
                # requests settle against their own (gone) lease id, not this one.
                lease.reset()
                lease.lease_id = result.lease_id
            lease.leased += result.granted
            lease.valid_until = submitted + self._ttl / 2
            lease.low = result.available_after < self._chunk
            return self._take(organization_id, lease, amount)

    def _undo(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is None and isinstance(task.result(), LocalHold):
            self.release(task.result())

    def settled(self, hold: LocalHold, outcome: Settled | BaseException | Any) -> None:
        """The request's settlement committed (or failed): its reservation ends."""
        lease = self._leases.get(hold.organization_id)
        if lease is None or lease.lease_id != hold.lease_id:
            return
        lease.reserved -= hold.amount
        if isinstance(outcome, Settled):
            if outcome.hold_missing:  # swept while we were stalled: start a fresh lease
                lease.reset()
                return
            lease.leased -= outcome.debited
            if outcome.available_after is not None:
                lease.low = outcome.available_after < self._chunk
        lease.last_used = time.monotonic()

    def release(self, hold: LocalHold) -> None:
        """A failed call: the reservation goes back to the lease; nothing was spent."""
        lease = self._leases.get(hold.organization_id)
        if lease is not None and lease.lease_id == hold.lease_id:
            lease.reserved -= hold.amount

    def known(self) -> dict[str, tuple[str, int]]:
        """organization id -> (lease id, leased micros) of the leases this process holds."""
        return {org: (lease.lease_id, lease.leased) for org, lease in self._leases.items() if lease.lease_id}

    # -- upkeep ---------------------------------------------------------------------------

    async def tidy(self, *, force: bool = False) -> None:
        """Give back idle leases (and a low lease's free money); renew the others' expiry."""
        now = time.monotonic()
        pending: list[asyncio.Future[Any]] = []
        for org, lease in list(self._leases.items()):
            if not lease.lease_id or lease.lock.locked():
                continue
            free = lease.leased - lease.reserved
            if lease.reserved <= 0 and (force or lease.low or now - lease.last_used >= self._idle):
                lease_id, leased = lease.lease_id, lease.leased
                lease.reset()  # before the write: no request may reserve from it meanwhile
                pending.append(self._writer.submit_nowait(Unlease(org, lease_id, leased)))
            elif lease.low and free > 0:
                lease.leased -= free
                pending.append(self._writer.submit_nowait(Unlease(org, lease.lease_id, free)))
        for future in pending:
            await self._writer.outcome(future)
        if force or now - self._last_renew >= self._renew_every:
            await self.renew()

    async def renew(self) -> None:
        self._last_renew = submitted = time.monotonic()
        live = {lease.lease_id: lease for lease in self._leases.values() if lease.lease_id}
        if not live:
            return
        result = await self._writer.submit(Renew("", list(live)))
        missing = set(result.missing) if isinstance(result, Renewed) else set()
        for lease_id, lease in live.items():
            if lease.lease_id != lease_id:
                continue  # replaced meanwhile
            if lease_id in missing:
                log.warning("a wallet lease was swept while this process stalled; taking a new one")
                lease.reset()
            else:
                lease.valid_until = max(lease.valid_until, submitted + self._ttl / 2)

    async def run(self, interval: float = 0.1) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tidy()
            except Exception:
                log.exception("lease upkeep failed")

    async def close(self) -> None:
        """Give every lease back (shutdown): in-flight requests have finished by now."""
        try:
            await self.tidy(force=True)
        except Exception:  # noqa: BLE001 - the sweeper releases what is left after the TTL
            log.warning("could not give the wallet leases back at shutdown", exc_info=True)

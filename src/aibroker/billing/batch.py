"""Apply a batch of money operations in ONE transaction (group commit).

Every wallet touched is locked first (FOR UPDATE on PostgreSQL, in id order so batches
never deadlock; BEGIN IMMEDIATE on SQLite), the operations are applied in arrival order
in Python, and the rows are written with a handful of bulk statements. Concurrent
requests share one commit; exactness comes from the locks, speed from the batching.

Requests are reserved from leases: a lease (Lease) is a process's standing hold on a
wallet, from which that process reserves requests in memory (billing/leases.py); a
settlement spends from the lease row, and an idle lease is given back (Unlease). Leases
are rows in wallet_holds, so held == sum(open holds). A lease expires AIBROKER_LEASE_TTL_SECONDS
after its last write (its live process renews it well within that), so a crashed process's
leases go back to the wallet within seconds, through the sweeper. A Settle with a plain
hold id releases that row instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from aibroker.billing.batch_sql import (
    WalletState,
    Writes,
    statements,
    sweep_expired_holds,
)
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id

LOW_BALANCE_EVENT = "wallet.low_balance"
DEFAULT_HOLD_TTL_SECONDS = 900
DEFAULT_LEASE_TTL_SECONDS = 20.0

__all__ = ["sweep_expired_holds"]  # re-exported: callers import it from here


# -- results -------------------------------------------------------------------------


@dataclass(slots=True)
class HoldRefused:
    available: int
    required: int
    balance: int = 0  # the wallet's balance: above `required`, others hold the money for now


@dataclass(slots=True)
class LeaseGranted:
    lease_id: str
    granted: int
    available_after: int = 0  # what is left in the wallet: low means give idle money back at once


@dataclass(slots=True)
class Settled:
    debited: int
    balance_after: int | None
    hold_missing: bool = False  # its hold or lease had been swept (a stalled process)
    available_after: int | None = None


@dataclass(slots=True)
class Renewed:
    missing: list[str]  # leases that no longer exist (swept while their process stalled)


@dataclass(slots=True)
class EntryPosted:
    entry_id: int | None
    balance_after: int
    duplicate: bool = False


class NoWallet(Exception):
    pass


class WouldGoNegative(Exception):
    def __init__(self, balance: int, amount: int) -> None:
        super().__init__(f"balance {balance} cannot absorb {amount}")
        self.balance = balance
        self.amount = amount


# -- operations ----------------------------------------------------------------------


@dataclass(slots=True)
class Lease:
    """Open or grow a process's lease on a wallet: at least `need`, up to `want`."""

    organization_id: str
    lease_id: str | None
    need: int
    want: int
    owner: str  # "lease:<process instance>", stored as the hold's request_id
    full: int = 0  # the request's whole amount: what a replacement row must cover when lease_id was swept


@dataclass(slots=True)
class Unlease:
    """Give back up to `amount` of a lease (the whole row goes when it reaches zero)."""

    organization_id: str
    lease_id: str
    amount: int


@dataclass(slots=True)
class Renew:
    """Push the expiry of live leases forward (they are swept only when their process dies).
    The result names those already gone (swept while their process stalled)."""

    organization_id: str  # unused: renewals touch no wallet
    lease_ids: list[str]


@dataclass(slots=True)
class Settle:
    """Release a hold or spend from a lease, debit the billed cost, write the usage record."""

    organization_id: str
    usage: dict[str, Any]  # a UsageRecord row
    hold_id: str | None = None
    debit: int = 0
    from_lease: bool = False  # hold_id is a lease: spend from it instead of deleting it
    # Runs in the batch's transaction once the usage record and debit are written, so a row
    # that must commit with them does (a /v1/batches line's result). An error rolls back both.
    after: Callable[[Connection, Settled], None] | None = None


@dataclass(slots=True)
class PostEntry:
    """A recharge, refund, adjustment or grant. Idempotent by key."""

    organization_id: str
    kind: str
    amount: int
    idempotency_key: str | None = None
    payment_ref: str | None = None
    description: str | None = None
    allow_negative: bool = False
    # Runs in the batch's transaction once the entry is written (or found a duplicate), so a
    # row that must commit with the entry does (payments/records.py). It must be idempotent.
    after: Callable[[Connection, EntryPosted], None] | None = None


Op = Lease | Unlease | Renew | Settle | PostEntry


# -- the batch -----------------------------------------------------------------------


def apply_batch(
    conn: Connection, ops: list[Op], *, hold_ttl_seconds: int = DEFAULT_HOLD_TTL_SECONDS,
    lease_ttl_seconds: float = DEFAULT_LEASE_TTL_SECONDS,
) -> list[Any]:
    """Apply `ops` inside the caller's transaction; returns one result (or exception) per op.
    Every lease written (granted, spent from, renewed) expires `lease_ttl_seconds` from now."""
    now = utcnow()
    sql = statements(conn)
    wallets = sql.lock_wallets(sorted({op.organization_id for op in ops if _needs_wallet(op)}))
    released = sql.release_holds([op.hold_id for op in ops if isinstance(op, Settle) and op.hold_id and not op.from_lease])
    leases = sql.read_leases(sorted(_lease_ids(ops)))
    seen_keys = sql.existing_keys([op.idempotency_key for op in ops if isinstance(op, PostEntry) and op.idempotency_key])
    writes = Writes()
    results: list[Any] = []
    expires = now + dt.timedelta(seconds=lease_ttl_seconds)
    for op in ops:
        wallet = wallets.get(op.organization_id)
        if isinstance(op, Lease):
            results.append(_lease(op, wallet, leases, writes, now, expires))
        elif isinstance(op, Unlease):
            results.append(_unlease(op, wallet, leases, writes))
        elif isinstance(op, Renew):
            writes.renew.extend(lid for lid in op.lease_ids if lid in leases)
            results.append(Renewed([lid for lid in op.lease_ids if lid not in leases]))
        elif isinstance(op, Settle):
            results.append(_settle(op, wallet, released, leases, writes, now))
        else:
            results.append(_post(op, wallet, seen_keys, writes, now))
    sql.write(wallets, writes, now, expires)
    for op, result in zip(ops, results, strict=True):
        if isinstance(op, PostEntry) and op.after is not None and isinstance(result, EntryPosted):
            op.after(conn, result)
        elif isinstance(op, Settle) and op.after is not None and isinstance(result, Settled):
            op.after(conn, result)
    return results


def _needs_wallet(op: Op) -> bool:
    if isinstance(op, Renew):
        return False
    return not isinstance(op, Settle) or bool(op.hold_id or op.debit)


def _lease_ids(ops: list[Op]) -> set[str]:
    ids: set[str] = set()
    for op in ops:
        if isinstance(op, Lease | Unlease) and op.lease_id:
            ids.add(op.lease_id)
        elif isinstance(op, Settle) and op.from_lease and op.hold_id:
            ids.add(op.hold_id)
        elif isinstance(op, Renew):
            ids.update(op.lease_ids)
    return ids


def _lease(
    op: Lease, wallet: WalletState | None, leases: dict[str, int], writes: Writes, now: dt.datetime, expires: dt.datetime
) -> Any:
    if wallet is None:
        return HoldRefused(available=0, required=op.need)
    existing = bool(op.lease_id and op.lease_id in leases)
    # A lease swept while its process stalled is gone with its money: a new row must
    # cover the whole request, not just what the old one lacked.
    need = max(0, op.need if existing or not op.full else max(op.need, op.full))
    want = max(op.want, need)
    available = wallet.balance - wallet.held
    if need > available:
        return HoldRefused(available=max(0, available), required=need, balance=wallet.balance)
    # Near the bottom of a wallet take only half of what is left, so other processes'
    # requests still find money: a lease must never starve them.
    grant = min(available, max(need, min(want, available // 2)))
    wallet.held += grant
    wallet.touched = True
    left = wallet.balance - wallet.held
    if existing:
        assert op.lease_id is not None
        leases[op.lease_id] += grant
        writes.leases[op.lease_id] = leases[op.lease_id]
        return LeaseGranted(op.lease_id, grant, left)
    lease_id = new_id("hold")
    writes.holds.append(
        {"id": lease_id, "wallet_id": wallet.id, "request_id": op.owner, "amount_micros": grant,
         "expires_at": expires, "created_at": now}
    )
    return LeaseGranted(lease_id, grant, left)


def _unlease(op: Unlease, wallet: WalletState | None, leases: dict[str, int], writes: Writes) -> int:
    if wallet is None or op.lease_id not in leases:
        return 0
    amount = min(op.amount, leases[op.lease_id])
    leases[op.lease_id] -= amount
    writes.leases[op.lease_id] = leases[op.lease_id]
    if leases[op.lease_id] == 0:
        writes.drop.append(op.lease_id)
    wallet.held -= amount
    wallet.touched = True
    return amount


def _settle(
    op: Settle,
    wallet: WalletState | None,
    released: dict[str, int],
    leases: dict[str, int],
    writes: Writes,
    now: dt.datetime,
) -> Settled:
    row = {**op.usage, "created_at": op.usage.get("created_at") or now}
    if wallet is None:
        row["billed_cost_micros"] = 0
        writes.usage.append(row)
        return Settled(debited=0, balance_after=None, hold_missing=bool(op.hold_id))
    lease_left: int | None = None
    missing = False
    if op.hold_id and op.from_lease:
        lease_left = leases.get(op.hold_id)
        missing = lease_left is None
    elif op.hold_id:
        missing = op.hold_id not in released
        if not missing:
            wallet.held -= released[op.hold_id]
            wallet.touched = True
    if lease_left is not None:
        # Spend from the lease: the money leaves the balance and the lease together.
        lease_id = op.hold_id
        assert lease_id is not None
        debit = min(op.debit, lease_left)
        leases[lease_id] = writes.leases[lease_id] = lease_left - debit
        wallet.held -= debit
    else:
        # The hold bounded the cost; should a provider ever bill beyond it, never overdraw.
        debit = min(op.debit, max(0, wallet.balance - wallet.held))
    row["billed_cost_micros"] = debit
    writes.usage.append(row)
    if debit:
        before = wallet.balance
        wallet.balance -= debit
        wallet.touched = True
        writes.ledger.append(_ledger_row(wallet, "debit", -debit, now, usage_record_id=row["id"]))
        _maybe_alert(wallet, before)
    return Settled(debited=debit, balance_after=wallet.balance, hold_missing=missing, available_after=wallet.balance - wallet.held)


def _post(
    op: PostEntry,
    wallet: WalletState | None,
    seen_keys: dict[str, tuple[int, int]],
    writes: Writes,
    now: dt.datetime,
) -> Any:
    if op.idempotency_key and op.idempotency_key in seen_keys:
        entry_id, balance = seen_keys[op.idempotency_key]
        return EntryPosted(entry_id=entry_id, balance_after=balance, duplicate=True)
    if wallet is None:
        return NoWallet(op.organization_id)
    if wallet.balance + op.amount < wallet.held and not op.allow_negative:
        return WouldGoNegative(wallet.balance - wallet.held, op.amount)
    before = wallet.balance
    wallet.balance += op.amount
    wallet.touched = True
    writes.ledger.append(
        _ledger_row(wallet, op.kind, op.amount, now, idempotency_key=op.idempotency_key,
                    payment_ref=op.payment_ref, description=op.description)
    )
    if op.idempotency_key:
        seen_keys[op.idempotency_key] = (0, wallet.balance)  # a repeat inside this batch
    if op.amount > 0 and wallet.balance >= wallet.threshold:
        wallet.alerted = False
    _maybe_alert(wallet, before)
    return EntryPosted(entry_id=None, balance_after=wallet.balance)


def _ledger_row(wallet: WalletState, kind: str, amount: int, now: dt.datetime, **refs: Any) -> dict[str, Any]:
    return {
        "wallet_id": wallet.id,
        "organization_id": wallet.organization_id,
        "kind": kind,
        "amount_micros": amount,
        "balance_after_micros": wallet.balance,
        "usage_record_id": refs.get("usage_record_id"),
        "payment_ref": refs.get("payment_ref"),
        "idempotency_key": refs.get("idempotency_key"),
        "description": refs.get("description"),
        "created_at": now,
    }


def _maybe_alert(wallet: WalletState, before: int) -> None:
    """Fire once when the balance crosses the threshold downwards; re-armed by a recharge."""
    if wallet.alerted or not wallet.threshold:
        return
    if before >= wallet.threshold > wallet.balance:
        wallet.alerted = True
        wallet.events.append(
            {
                "type": LOW_BALANCE_EVENT,
                "payload": {"wallet_id": wallet.id, "balance_micros": wallet.balance, "threshold_micros": wallet.threshold},
            }
        )

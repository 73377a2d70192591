"""The SQL of a money batch: lock wallets, read holds and idempotency keys, write rows.
Run on the raw DBAPI cursor (rawsql.py says why), prepared once per pooled connection."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, select, update

from aibroker.ai.rollup_writer import RollupWriter
from aibroker.billing.rawsql import RawSql, TableInsert, processor
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Event, LedgerEntry, UsageRecord, Wallet, WalletHold

_LOCK_WALLETS = (
    "SELECT id, organization_id, balance_micros, held_micros, low_balance_threshold_micros, low_balance_alerted"
    " FROM wallets WHERE organization_id IN ({marks}) ORDER BY id{lock}"
)
_RELEASE_HOLDS = "DELETE FROM wallet_holds WHERE id IN ({marks}) RETURNING id, amount_micros"
_READ_LEASES = "SELECT id, amount_micros FROM wallet_holds WHERE id IN ({marks})"
_EXISTING_KEYS = "SELECT idempotency_key, id, balance_after_micros FROM ledger_entries WHERE idempotency_key IN ({marks})"
_UPDATE_WALLETS = "UPDATE wallets SET balance_micros = ?, held_micros = ?, low_balance_alerted = ?, updated_at = ? WHERE id = ?"
_UPDATE_LEASES = "UPDATE wallet_holds SET amount_micros = ?, expires_at = ? WHERE id = ?"
_DROP_LEASES = "DELETE FROM wallet_holds WHERE id = ?"
_RENEW = "UPDATE wallet_holds SET expires_at = ? WHERE id = ?"


@dataclass(slots=True)
class WalletState:
    id: str
    organization_id: str
    balance: int
    held: int
    threshold: int
    alerted: bool
    touched: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Writes:
    """Everything a batch decided, written with one statement per kind."""

    holds: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    leases: dict[str, int] = field(default_factory=dict)  # lease id -> its new amount
    drop: list[str] = field(default_factory=list)  # leases given back whole
    renew: list[str] = field(default_factory=list)


class Statements:
    def __init__(self, conn: Connection) -> None:
        self.raw = RawSql(conn)
        self.holds = TableInsert(WalletHold.__table__, self.raw)  # type: ignore[arg-type]
        self.usage = TableInsert(UsageRecord.__table__, self.raw)  # type: ignore[arg-type]
        self.ledger = TableInsert(LedgerEntry.__table__, self.raw)  # type: ignore[arg-type]
        self.events = TableInsert(Event.__table__, self.raw)  # type: ignore[arg-type]
        # The analytics rollups: maintained with the usage records, in their transaction.
        self.rollups = RollupWriter(self.raw)
        self.timestamp = processor(Wallet.__table__.c.updated_at, self.raw) or (lambda v: v)
        self.flag = processor(Wallet.__table__.c.low_balance_alerted, self.raw) or bool

    def bind(self, conn: Connection) -> Statements:
        # Same DBAPI connection; a fresh cursor per transaction is cheap.
        self.raw.cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        return self

    def select_in(self, template: str, values: list[str]) -> list[tuple[Any, ...]]:
        if not values:
            return []
        sql = template.format(marks=self.raw.marks(len(values)), lock=self.raw.lock_clause)
        return self.raw.fetch(sql, values)

    def lock_wallets(self, org_ids: list[str]) -> dict[str, WalletState]:
        rows = self.select_in(_LOCK_WALLETS, org_ids)
        return {r[1]: WalletState(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), bool(r[5])) for r in rows}

    def release_holds(self, hold_ids: list[str]) -> dict[str, int]:
        """Delete the holds being settled; a hold already swept is simply absent."""
        return {hold_id: int(amount) for hold_id, amount in self.select_in(_RELEASE_HOLDS, hold_ids)}

    def read_leases(self, lease_ids: list[str]) -> dict[str, int]:
        return {lease_id: int(amount) for lease_id, amount in self.select_in(_READ_LEASES, lease_ids)}

    def existing_keys(self, keys: list[str]) -> dict[str, tuple[int, int]]:
        return {key: (entry_id, balance) for key, entry_id, balance in self.select_in(_EXISTING_KEYS, keys)}

    def write(self, wallets: dict[str, WalletState], writes: Writes, now: dt.datetime, expires: dt.datetime) -> None:
        stamp, until = self.timestamp(now), self.timestamp(expires)
        self.holds.rows(writes.holds)
        self.usage.rows(writes.usage)
        self.rollups.write(writes.usage)
        self.ledger.rows(writes.ledger)
        dropped = set(writes.drop)
        self.raw.run_many(_UPDATE_LEASES, [(amount, until, lid) for lid, amount in writes.leases.items() if lid not in dropped])
        self.raw.run_many(_DROP_LEASES, [(lid,) for lid in dropped])
        self.raw.run_many(_RENEW, [(until, lid) for lid in writes.renew if lid not in writes.leases])
        self.raw.run_many(
            _UPDATE_WALLETS,
            [(w.balance, w.held, self.flag(w.alerted), stamp, w.id) for w in wallets.values() if w.touched],
        )
        self.events.rows(
            {"id": new_id("evt"), "organization_id": w.organization_id, "created_at": now, "delivery_attempts": 0, **e}
            for w in wallets.values()
            for e in w.events
        )


def statements(conn: Connection) -> Statements:
    """Prepared once per pooled DBAPI connection (kept in its `info`)."""
    info = conn.connection.info
    cached = info.get("aibroker_money_sql")
    if cached is None:
        cached = info["aibroker_money_sql"] = Statements(conn)
        return cached
    return cached.bind(conn)


def sweep_expired_holds(conn: Connection, now: dt.datetime | None = None) -> int:
    """Release the holds of requests (and leases of processes) that never settled: a crashed
    process. Returns the micros released."""
    now = now or utcnow()
    wallet_ids = sorted(
        {w for (w,) in conn.execute(select(WalletHold.wallet_id).where(WalletHold.expires_at < now).distinct())}
    )
    if not wallet_ids:
        return 0
    # Lock wallets before holds, the same order as a batch, so the two never deadlock.
    conn.execute(select(Wallet.id).where(Wallet.id.in_(wallet_ids)).order_by(Wallet.id).with_for_update()).all()
    released: dict[str, int] = {}
    rows = conn.execute(
        delete(WalletHold)
        .where(WalletHold.expires_at < now, WalletHold.wallet_id.in_(wallet_ids))
        .returning(WalletHold.wallet_id, WalletHold.amount_micros)
    )
    for wallet_id, amount in rows:
        released[wallet_id] = released.get(wallet_id, 0) + amount
    for wallet_id, amount in released.items():
        conn.execute(update(Wallet).where(Wallet.id == wallet_id).values(held_micros=Wallet.held_micros - amount))
    return sum(released.values())

"""`aibroker verify-ledger`: prove that the wallets, holds, ledger and usage records agree.

A run starts from the last checkpoint (`billing/audit_checkpoint.py`): the per-wallet ledger
sums and last balances audited through an entry id. It checks only the entries and usage
records after it against those totals, so its cost follows what changed, not the table's
size. `--full` (and `verify()`, which the tests use) starts from nothing.

Every check is one GROUP BY / join query (no per-row round trips), run inside one
read transaction so the checks see a single consistent snapshot even while brokers
keep writing: REPEATABLE READ on PostgreSQL, a deferred BEGIN (WAL snapshot) on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, literal, or_, select
from sqlalchemy.engine import Engine

from aibroker.models import LedgerCheckpointWallet, LedgerEntry, UsageRecord, Wallet, WalletHold

# Enough to act on; the count says how many more there are.
MAX_LISTED_PER_CHECK = 1000


@dataclass(frozen=True, slots=True)
class Problem:
    check: str  # balance | held | chain | debit_without_usage | usage_without_debit | debit_amount
    wallet_id: str | None
    organization_id: str | None
    subject: str  # the wallet, ledger entry or usage record that disagrees
    expected: int | None
    actual: int | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Since:
    """Where a run starts: entries after `through_entry_id`, usage records from
    `usage_through_id` on, and (when `from_checkpoint`) the per-wallet audited totals."""

    through_entry_id: int = 0
    usage_through_id: str = ""
    entries: int = 0
    from_checkpoint: bool = False


FROM_START = Since()


@dataclass(slots=True)
class Report:
    wallets: int
    ledger_entries: int
    problems: list[Problem]
    truncated: dict[str, int]  # check -> problems beyond MAX_LISTED_PER_CHECK

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "wallets": self.wallets,
            "ledger_entries": self.ledger_entries,
            "problems": [p.as_dict() for p in self.problems],
            "truncated": self.truncated,
        }


def snapshot_engine(engine: Engine) -> Engine:
    """The engine, set to read one consistent snapshot per transaction."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ")  # type: ignore[return-value]
    return engine


def verify(engine: Engine) -> Report:
    """Everything, from the start (no checkpoint read or written)."""
    with snapshot(engine) as conn:
        return verify_connection(conn)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection reading one consistent moment until the block ends (then rolled back)."""
    engine = snapshot_engine(engine)
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite does not begin a transaction for reads; without one each SELECT
            # would see a different moment. BEGIN + the first read pins the WAL snapshot.
            conn.exec_driver_sql("BEGIN")  # opened by hand, rolled back below
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")
            return
        with conn.begin():
            yield conn


def verify_connection(conn: Connection, since: Since = FROM_START) -> Report:
    problems: list[Problem] = []
    truncated: dict[str, int] = {}
    for check in (_balances, _held, _chain, _debits_without_usage, _usage_without_debit):
        found = check(conn, since)
        if len(found) > MAX_LISTED_PER_CHECK:
            truncated[found[0].check] = len(found) - MAX_LISTED_PER_CHECK
            found = found[:MAX_LISTED_PER_CHECK]
        problems.extend(found)
    wallets = conn.execute(select(func.count()).select_from(Wallet)).scalar_one()
    tail = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.id > since.through_entry_id)
    entries = since.entries + conn.execute(tail).scalar_one()
    return Report(wallets=wallets, ledger_entries=entries, problems=problems, truncated=truncated)


def _audited_sum(since: Since) -> Any:
    """The wallet's ledger sum through the checkpoint (0 when starting from nothing)."""
    if not since.from_checkpoint:
        return literal(0)
    audited = select(LedgerCheckpointWallet.sum_micros).where(LedgerCheckpointWallet.wallet_id == Wallet.id)
    return func.coalesce(audited.scalar_subquery(), 0)


def _audited_last_balance(since: Since, wallet_id: Any) -> Any:
    """The wallet's balance after its last audited entry (0 from nothing)."""
    if not since.from_checkpoint:
        return literal(0)
    audited = select(LedgerCheckpointWallet.last_balance_after_micros).where(LedgerCheckpointWallet.wallet_id == wallet_id)
    return func.coalesce(audited.scalar_subquery(), 0)


def _entries_after(since: Since) -> Any:
    """The ledger entries after the checkpoint. After one they are read by primary-key range
    first (a materialized CTE): grouped by wallet straight away, SQLite would walk the
    (wallet_id, id) index across the whole table instead."""
    tail = select(
        LedgerEntry.id, LedgerEntry.wallet_id, LedgerEntry.organization_id, LedgerEntry.amount_micros,
        LedgerEntry.balance_after_micros,
    ).where(LedgerEntry.id > since.through_entry_id)
    return tail.cte("tail").prefix_with("MATERIALIZED") if since.from_checkpoint else tail.subquery("tail")


def _balances(conn: Connection, since: Since) -> list[Problem]:
    """balance == audited sum + sum(ledger amounts after the checkpoint)."""
    tail = _entries_after(since)
    sums = (
        select(tail.c.wallet_id, func.sum(tail.c.amount_micros).label("total"))
        .group_by(tail.c.wallet_id)
        .subquery()
    )
    total = func.coalesce(sums.c.total, 0) + _audited_sum(since)
    rows = conn.execute(
        select(Wallet.id, Wallet.organization_id, Wallet.balance_micros, total)
        .outerjoin(sums, sums.c.wallet_id == Wallet.id)
        .where(Wallet.balance_micros != total)
        .order_by(Wallet.id)
    )
    return [
        Problem("balance", wid, org, wid, int(ledger), int(balance), f"wallet balance {balance} != sum of its ledger {ledger}")
        for wid, org, balance, ledger in rows
    ]


def _held(conn: Connection, since: Since) -> list[Problem]:
    """held == sum(open holds). Holds are few and short-lived: always checked whole."""
    sums = (
        select(WalletHold.wallet_id, func.sum(WalletHold.amount_micros).label("total"))
        .group_by(WalletHold.wallet_id)
        .subquery()
    )
    total = func.coalesce(sums.c.total, 0)
    rows = conn.execute(
        select(Wallet.id, Wallet.organization_id, Wallet.held_micros, total)
        .outerjoin(sums, sums.c.wallet_id == Wallet.id)
        .where(Wallet.held_micros != total)
        .order_by(Wallet.id)
    )
    return [
        Problem("held", wid, org, wid, int(holds), int(held), f"wallet held {held} != sum of its open holds {holds}")
        for wid, org, held, holds in rows
    ]


def _chain(conn: Connection, since: Since) -> list[Problem]:
    """Each entry's balance_after == the previous entry's balance_after + its amount (the
    first entry after the checkpoint follows the wallet's audited last balance)."""
    tail = _entries_after(since)
    previous = func.lag(tail.c.balance_after_micros).over(partition_by=tail.c.wallet_id, order_by=tail.c.id)
    ordered = select(
        tail.c.id,
        tail.c.wallet_id,
        tail.c.organization_id,
        tail.c.amount_micros,
        tail.c.balance_after_micros,
        func.coalesce(previous, _audited_last_balance(since, tail.c.wallet_id)).label("before"),
    ).subquery()
    rows = conn.execute(
        select(ordered)
        .where(ordered.c.before + ordered.c.amount_micros != ordered.c.balance_after_micros)
        .order_by(ordered.c.id)
    )
    return [
        Problem(
            "chain", wid, org, f"ledger:{eid}", int(before + amount), int(after),
            f"ledger entry {eid}: balance_after {after} != previous {before} + amount {amount}",
        )
        for eid, wid, org, amount, after, before in rows
    ]


def _debits_without_usage(conn: Connection, since: Since) -> list[Problem]:
    """Every debit references one usage record, and debits exactly its billed cost."""
    rows = conn.execute(
        select(
            LedgerEntry.id,
            LedgerEntry.wallet_id,
            LedgerEntry.organization_id,
            LedgerEntry.amount_micros,
            LedgerEntry.usage_record_id,
            UsageRecord.id,
            UsageRecord.billed_cost_micros,
        )
        .outerjoin(UsageRecord, UsageRecord.id == LedgerEntry.usage_record_id)
        .where(
            LedgerEntry.id > since.through_entry_id,
            LedgerEntry.kind == "debit",
            or_(UsageRecord.id.is_(None), LedgerEntry.amount_micros != -UsageRecord.billed_cost_micros),
        )
        .order_by(LedgerEntry.id)
    )
    problems = []
    for eid, wid, org, amount, ref, usage_id, billed in rows:
        if usage_id is None:
            detail = f"debit {eid} ({amount}) references no usage record" + (f" (missing '{ref}')" if ref else "")
            problems.append(Problem("debit_without_usage", wid, org, f"ledger:{eid}", None, int(amount), detail))
        else:
            detail = f"debit {eid} is {amount} but usage record {usage_id} was billed {billed}"
            problems.append(Problem("debit_amount", wid, org, f"ledger:{eid}", -int(billed), int(amount), detail))
    return problems


def _usage_without_debit(conn: Connection, since: Since) -> list[Problem]:
    """Every usage record billed > 0 has a debit (the unique key makes it at most one)."""
    rows = conn.execute(
        select(UsageRecord.id, UsageRecord.organization_id, UsageRecord.billed_cost_micros)
        .outerjoin(
            LedgerEntry, and_(LedgerEntry.usage_record_id == UsageRecord.id, LedgerEntry.kind == "debit")
        )
        .where(UsageRecord.id >= since.usage_through_id, UsageRecord.billed_cost_micros > 0, LedgerEntry.id.is_(None))
        .order_by(UsageRecord.id)
    )
    return [
        Problem(
            "usage_without_debit", None, org, f"usage:{uid}", -int(billed), None,
            f"usage record {uid} was billed {billed} but has no debit",
        )
        for uid, org, billed in rows
    ]

"""Checkpoints for `aibroker verify-ledger`: after a clean run, the audited per-wallet totals
through a ledger entry id are stored, and the next run verifies only what came after.

The checkpoint stops short of the newest entries (CHECKPOINT_LAG): on PostgreSQL ids come
from a sequence, so an entry can commit after one with a higher id. Anything older than the
lag is assumed committed (money transactions last milliseconds). If that ever failed, the
late entry would make the next run's balance check fail loudly, never pass silently, and
`--full` rebuilds the checkpoint from the start.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.engine import Engine

from aibroker.billing.audit import FROM_START, Report, Since, snapshot, verify_connection
from aibroker.kit.clock import utcnow
from aibroker.models import LedgerCheckpoint, LedgerCheckpointWallet, LedgerEntry

CHECKPOINT_LAG = dt.timedelta(seconds=60)
# Usage record ids are "use_" + 16 hex digits of creation nanoseconds + randomness.
USAGE_ID_PREFIX = "use_"


def verify_ledger(engine: Engine, *, full: bool = False, now: dt.datetime | None = None) -> Report:
    """Verify from the checkpoint (or from the start when `full` or when there is none);
    when the run is clean, move the checkpoint up to what it just proved."""
    moment = now or utcnow()
    with snapshot(engine) as conn:
        since = FROM_START if full else load(conn)
        report = verify_connection(conn, since)
        advanced = _advance(conn, since, moment - CHECKPOINT_LAG) if report.ok else None
    if advanced is not None:
        checkpoint, wallets = advanced
        _save(engine, since, checkpoint, wallets, moment)
    return report


def load(conn: Connection) -> Since:
    row = conn.execute(select(LedgerCheckpoint).where(LedgerCheckpoint.id == 1)).one_or_none()
    if row is None:
        return FROM_START
    return Since(row.through_entry_id, row.usage_through_id, row.entries, from_checkpoint=True)


def _advance(conn: Connection, since: Since, cutoff: dt.datetime) -> tuple[Since, list[dict]] | None:
    """The checkpoint this snapshot proves: entries up to the newest one older than the
    cutoff, with each touched wallet's new audited sum and last balance."""
    newest = conn.execute(
        select(func.max(LedgerEntry.id)).where(LedgerEntry.id > since.through_entry_id, LedgerEntry.created_at <= cutoff)
    ).scalar_one()
    usage_through = f"{USAGE_ID_PREFIX}{int(cutoff.timestamp() * 1_000_000_000):016x}"
    if newest is None:
        if usage_through <= since.usage_through_id:
            return None
        return Since(since.through_entry_id, usage_through, since.entries, True), []
    # By primary-key range first (materialized), as in audit._entries_after.
    span = (
        select(LedgerEntry.id, LedgerEntry.wallet_id, LedgerEntry.amount_micros)
        .where(LedgerEntry.id > since.through_entry_id, LedgerEntry.id <= newest)
        .cte("span")
        .prefix_with("MATERIALIZED")
    )
    sums = conn.execute(
        select(span.c.wallet_id, func.sum(span.c.amount_micros), func.max(span.c.id), func.count()).group_by(span.c.wallet_id)
    ).all()
    balances: dict[int, int] = {}
    for part in _slices([last for _, _, last, _ in sums]):
        query = select(LedgerEntry.id, LedgerEntry.balance_after_micros).where(LedgerEntry.id.in_(part))
        balances.update({i: b for i, b in conn.execute(query)})
    audited: dict[str, int] = {}
    for part in _slices([wallet_id for wallet_id, *_ in sums] if since.from_checkpoint else []):
        query = select(LedgerCheckpointWallet.wallet_id, LedgerCheckpointWallet.sum_micros).where(
            LedgerCheckpointWallet.wallet_id.in_(part)
        )
        audited.update({w: s for w, s in conn.execute(query)})
    wallets = [
        {
            "wallet_id": wallet_id,
            "sum_micros": int(audited.get(wallet_id, 0)) + int(total),
            "last_entry_id": int(last),
            "last_balance_after_micros": int(balances[last]),
        }
        for wallet_id, total, last, _ in sums
    ]
    counted = since.entries + sum(int(n) for *_, n in sums)
    return Since(int(newest), max(usage_through, since.usage_through_id), counted, True), wallets


def _save(engine: Engine, since: Since, checkpoint: Since, wallets: list[dict], moment: dt.datetime) -> None:
    """Store the new checkpoint, unless another run moved it meanwhile (then theirs stands)."""
    with engine.begin() as conn:
        current = conn.execute(
            select(LedgerCheckpoint.through_entry_id).where(LedgerCheckpoint.id == 1).with_for_update()
        ).scalar_one_or_none()
        fields = {
            "through_entry_id": checkpoint.through_entry_id,
            "usage_through_id": checkpoint.usage_through_id,
            "entries": checkpoint.entries,
            "verified_at": moment,
        }
        if not since.from_checkpoint:  # a run from the start replaces whatever was there
            conn.execute(delete(LedgerCheckpointWallet))
            conn.execute(delete(LedgerCheckpoint))
            current = None
        elif current != since.through_entry_id:
            return
        if current is None:
            conn.execute(insert(LedgerCheckpoint).values(id=1, **fields))
        else:
            conn.execute(update(LedgerCheckpoint).where(LedgerCheckpoint.id == 1).values(**fields))
        for part in _slices(wallets):
            conn.execute(delete(LedgerCheckpointWallet).where(LedgerCheckpointWallet.wallet_id.in_([w["wallet_id"] for w in part])))
            conn.execute(insert(LedgerCheckpointWallet), part)


def _slices(items: list, size: int = 5000) -> list[list]:
    """IN lists of bounded length (SQLite caps bound parameters per statement)."""
    return [items[i : i + size] for i in range(0, len(items), size)]

"""`aibroker verify-ledger` from checkpoints: a clean run stores the audited totals, the next
run reads only what came after them and still catches every disagreement there, and
`--full` re-verifies (and catches) what a checkpoint vouched for."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, text

from aibroker.billing.audit import verify
from aibroker.billing.audit_checkpoint import verify_ledger
from aibroker.db import make_sync_engine
from aibroker.models import LedgerCheckpoint, LedgerCheckpointWallet, LedgerEntry, Wallet
from tests.billing.conftest import run_cli
from tests.billing.test_ledger_audit import _mixed_workload

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # past the lag: everything so far is checkpointed


def _engine(broker):
    return make_sync_engine(broker.database_url, pooled=False)


def test_a_clean_run_checkpoints_what_it_proved_and_the_next_reads_only_the_rest(broker, org, upstream):
    _mixed_workload(broker, org, upstream)
    engine = _engine(broker)
    try:
        first = verify_ledger(engine, now=LATER)
        with engine.connect() as conn:
            checkpoint = conn.execute(select(LedgerCheckpoint)).one()
            total = conn.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
            newest = conn.execute(select(func.max(LedgerEntry.id))).scalar_one()
            audited = dict(conn.execute(select(LedgerCheckpointWallet.wallet_id, LedgerCheckpointWallet.sum_micros)).all())
            balances = dict(conn.execute(select(Wallet.id, Wallet.balance_micros)).all())
        assert first.ok and first.ledger_entries == total
        assert (checkpoint.through_entry_id, checkpoint.entries) == (newest, total)
        assert audited == balances  # no hold open: each wallet's audited sum is its balance

        _mixed_workload(broker, org, upstream)  # more entries after the checkpoint
        second = verify_ledger(engine, now=LATER + dt.timedelta(hours=1))
        with engine.connect() as conn:
            assert second.ok and second.ledger_entries == conn.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
            assert conn.execute(select(LedgerCheckpoint.through_entry_id)).scalar_one() > newest
    finally:
        engine.dispose()


def test_a_disagreement_after_the_checkpoint_is_found_and_no_checkpoint_moves_past_it(broker, org, upstream):
    _mixed_workload(broker, org, upstream)
    engine = _engine(broker)
    try:
        assert verify_ledger(engine, now=LATER).ok
        with engine.connect() as conn:
            through = conn.execute(select(LedgerCheckpoint.through_entry_id)).scalar_one()
        _mixed_workload(broker, org, upstream)
        with engine.begin() as conn:
            conn.execute(text("UPDATE ledger_entries SET balance_after_micros = balance_after_micros + 3 WHERE id = :i"), {"i": through + 1})
        report = verify_ledger(engine, now=LATER + dt.timedelta(hours=1))
        assert {p.check for p in report.problems} == {"chain"}
        with engine.connect() as conn:
            assert conn.execute(select(LedgerCheckpoint.through_entry_id)).scalar_one() == through
        with engine.begin() as conn:  # a wallet moved without a ledger entry: caught against the audited sum
            conn.execute(text("UPDATE ledger_entries SET balance_after_micros = balance_after_micros - 3 WHERE id = :i"), {"i": through + 1})
            conn.execute(text("UPDATE wallets SET balance_micros = balance_micros + 5"))
        assert {p.check for p in verify_ledger(engine, now=LATER).problems} == {"balance"}
    finally:
        engine.dispose()


def test_full_re_verifies_what_a_checkpoint_vouched_for(broker, org, upstream, database_url):
    _mixed_workload(broker, org, upstream)
    engine = _engine(broker)
    try:
        assert verify_ledger(engine, now=LATER).ok
        with engine.begin() as conn:  # tamper with an audited entry and its wallet alike
            first = conn.execute(select(func.min(LedgerEntry.id)).where(LedgerEntry.kind == "debit")).scalar_one()
            conn.execute(text("UPDATE ledger_entries SET amount_micros = amount_micros - 1 WHERE id = :i"), {"i": first})
        assert verify_ledger(engine, now=LATER).ok  # the checkpoint vouches for it: not read again
        assert not verify(engine).ok
    finally:
        engine.dispose()
    full = run_cli(database_url, "verify-ledger", "--full", check=False)
    assert full.returncode == 1 and "debit_amount" in full.stdout

"""`aibroker verify-ledger` at scale: a ledger of N entries (default 10 million) over W wallets,
half of them debits with their usage records, generated in SQL; then the full verification,
the first checkpointed run (which starts from nothing), and a run from the checkpoint after
10,000 more entries. Prints a table with the ratios.

    .venv/bin/python bench/ledger_verify.py                       # SQLite, 10M entries
    .venv/bin/python bench/ledger_verify.py --entries 1000000
    .venv/bin/python bench/ledger_verify.py --database-url postgresql://postgres@127.0.0.1:5432/aibroker_bench_ledger
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from aibroker.billing.audit import verify  # noqa: E402
from aibroker.billing.audit_checkpoint import verify_ledger  # noqa: E402
from aibroker.db import make_sync_engine  # noqa: E402
from aibroker.migrations.runner import upgrade  # noqa: E402

CHUNK = 1_000_000
BASE_NS = 1_767_225_600 * 10**9  # 2026-01-01: old enough to be checkpointed


def _sequence(dialect: str, start: int, stop: int) -> str:
    """A CTE `seq(n)` of the integers start..stop."""
    if dialect == "postgresql":
        return f"WITH seq(n) AS (SELECT generate_series({start}, {stop}))"
    return f"WITH RECURSIVE seq(n) AS (SELECT {start} UNION ALL SELECT n + 1 FROM seq WHERE n < {stop})"


def _hex16(dialect: str, expr: str) -> str:
    return f"lpad(to_hex({expr}), 16, '0')" if dialect == "postgresql" else f"printf('%016x', {expr})"


def _load(engine: Engine, start: int, stop: int, wallets: int, created: str, base_ns: int = BASE_NS) -> None:
    """Entries start..stop: odd ids recharge 1000, even ids debit 400 with a usage record.
    Wallet = id mod W (W odd, so each wallet alternates); balance_after in closed form."""
    dialect = engine.dialect.name
    use_id = f"'use_' || {_hex16(dialect, f'{base_ns} + n')} || '000000000000'"
    # j: how many of the wallet's entries there are up to n (wallet 0's first id is W itself).
    j = f"(CASE WHEN n % {wallets} = 0 THEN n / {wallets} ELSE n / {wallets} + 1 END)"
    first_is_odd = f"(n % {wallets} = 0 OR (n % {wallets}) % 2 = 1)"
    odd = f"(CASE WHEN {first_is_odd} THEN ({j} + 1) / 2 ELSE {j} / 2 END)"
    with engine.begin() as conn:
        conn.execute(text(
            f"{_sequence(dialect, start, stop)} INSERT INTO usage_records (id, request_id, organization_id, endpoint, provider,"
            " model, input_tokens, output_tokens, cached_tokens, provider_cost_micros, billed_cost_micros, margin_bps,"
            " latency_ms, upstream_latency_ms, status, attempt, streamed, cached, byok, created_at)"
            f" SELECT {use_id}, 'req_' || n, 'org_' || (n % {wallets}), 'chat', 'mock', 'mock-chat', 10, 10, 0, 300, 400,"
            f" 3333, 1, 1, 'success', 1, false, false, false, {created} FROM seq WHERE n % 2 = 0"
        ))
        conn.execute(text(
            f"{_sequence(dialect, start, stop)} INSERT INTO ledger_entries (id, wallet_id, organization_id, kind, amount_micros,"
            " balance_after_micros, usage_record_id, created_at)"
            f" SELECT n, 'wal_' || (n % {wallets}), 'org_' || (n % {wallets}),"
            " CASE WHEN n % 2 = 1 THEN 'recharge' ELSE 'debit' END, CASE WHEN n % 2 = 1 THEN 1000 ELSE -400 END,"
            f" 1000 * {odd} - 400 * ({j} - {odd}), CASE WHEN n % 2 = 0 THEN {use_id} END, {created} FROM seq"
        ))


def _prepare(url: str, entries: int, wallets: int) -> Engine:
    engine = make_sync_engine(url, pooled=False)
    with engine.begin() as conn:
        conn.execute(text(
            f"{_sequence(engine.dialect.name, 0, wallets - 1)} INSERT INTO organizations (id, name, slug, plan, status, timezone,"
            " created_at, allow_code_auth, cache_enabled) SELECT 'org_' || n, 'Org ' || n, 'org-' || n, 'free', 'active', 'UTC',"
            " '2026-01-01 00:00:00', false, true FROM seq"
        ))
        conn.execute(text(
            "INSERT INTO wallets (id, organization_id, currency, balance_micros, held_micros, low_balance_threshold_micros,"
            " low_balance_alerted, created_at) SELECT 'wal_' || substr(id, 5), id, 'USD', 0, 0, 0, false, created_at FROM organizations"
        ))
    for start in range(1, entries + 1, CHUNK):
        _load(engine, start, min(entries, start + CHUNK - 1), wallets, "'2026-01-01 00:00:00'")
        print(f"  loaded {min(entries, start + CHUNK - 1):,} entries", file=sys.stderr)
    _settle_wallets(engine)
    return engine


def _settle_wallets(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE wallets SET balance_micros = COALESCE((SELECT SUM(amount_micros) FROM ledger_entries e"
            " WHERE e.wallet_id = wallets.id), 0)"
        ))


def _timed(run):
    began = time.perf_counter()
    report = run()
    assert report.ok, report.problems[:3]
    return time.perf_counter() - began, report.ledger_entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--wallets", type=int, default=10_001, help="odd, so each wallet alternates credits and debits")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (its public schema is dropped); default a temp SQLite file")
    args = parser.parse_args()
    wallets = args.wallets | 1
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'ledger.db'}"
        if args.database_url:
            engine = make_sync_engine(url, pooled=False)
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            engine.dispose()
        upgrade(url)
        began = time.perf_counter()
        engine = _prepare(url, args.entries, wallets)
        load_s = time.perf_counter() - began
        full_s, counted = _timed(lambda: verify(engine))
        first_s, _ = _timed(lambda: verify_ledger(engine))
        _load(engine, args.entries + 1, args.entries + 10_000, wallets, "CURRENT_TIMESTAMP", time.time_ns())
        _settle_wallets(engine)
        tail_s, after = _timed(lambda: verify_ledger(engine))
        engine.dispose()
    print(f"\nverify-ledger on {engine.dialect.name}, {counted:,} ledger entries, {wallets:,} wallets (load {load_s:.0f} s)\n")
    print("| run | entries read | seconds | vs full |")
    print("|---|---:|---:|---:|")
    print(f"| full (`--full`) | {counted:,} | {full_s:.2f} | 1.00x |")
    print(f"| first checkpointed run (from nothing) | {counted:,} | {first_s:.2f} | {first_s / full_s:.2f}x |")
    print(f"| from the checkpoint, 10,000 new entries | {after - counted:,} | {tail_s:.2f} | {tail_s / full_s:.3f}x |")


if __name__ == "__main__":
    main()

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
sys.path.insert(0, str(REPO / "bench"))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

import _prefill as prefill  # noqa: E402
from aibroker.billing.audit import verify  # noqa: E402
from aibroker.billing.audit_checkpoint import verify_ledger  # noqa: E402
from aibroker.db import make_sync_engine  # noqa: E402
from aibroker.migrations.runner import upgrade  # noqa: E402


def _prepare(url: str, entries: int, wallets: int) -> Engine:
    engine = make_sync_engine(url, pooled=False)
    prefill.create_wallets(engine, wallets)
    for start in range(1, entries + 1, prefill.CHUNK):
        prefill.ledger(engine, start, min(entries, start + prefill.CHUNK - 1), wallets)
        print(f"  loaded {min(entries, start + prefill.CHUNK - 1):,} entries", file=sys.stderr)
    prefill.settle_wallets(engine)
    return engine


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
        prefill.ledger(engine, args.entries + 1, args.entries + 10_000, wallets, created="CURRENT_TIMESTAMP",
                       base_ns=time.time_ns())
        prefill.settle_wallets(engine)
        tail_s, after = _timed(lambda: verify_ledger(engine))
        engine.dispose()
    lines = [
        f"# verify-ledger on {engine.dialect.name}: {counted:,} ledger entries, {wallets:,} wallets (load {load_s:.0f} s)",
        "",
        "| run | entries read | seconds | vs full |",
        "|---|---:|---:|---:|",
        f"| full (`--full`) | {counted:,} | {full_s:.2f} | 1.00x |",
        f"| first checkpointed run (from nothing) | {counted:,} | {first_s:.2f} | {first_s / full_s:.2f}x |",
        f"| from the checkpoint, 10,000 new entries | {after - counted:,} | {tail_s:.2f} | {tail_s / full_s:.5f}x |",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    (REPO / "bench" / "results" / "ledger_verify.md").write_text(table)

if __name__ == "__main__":
    main()

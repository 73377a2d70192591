"""Bulk data for benchmarks, generated inside the database (no rows cross the wire): wallets
with ledger entries that verify (recharges and debits, each debit with its usage record,
balances in closed form) and unbilled usage records. `aibroker verify-ledger` stays clean.

Ledger entry n (1..N): odd n recharges 1000, even n debits 400 with usage record `use_...`.
Wallet = n mod W (W odd, so every wallet alternates credits and debits)."""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.engine import Engine

CHUNK = 1_000_000
OLD = "'2026-01-01 00:00:00'"  # old enough to be checkpointed and outside any day's quota
BASE_NS = 1_767_225_600 * 10**9  # 2026-01-01 in nanoseconds: usage ids sort before today's


def sequence(dialect: str, start: int, stop: int) -> str:
    """A CTE `seq(n)` of the integers start..stop."""
    if dialect == "postgresql":
        return f"WITH seq(n) AS (SELECT generate_series({start}, {stop}))"
    return f"WITH RECURSIVE seq(n) AS (SELECT {start} UNION ALL SELECT n + 1 FROM seq WHERE n < {stop})"


def _hex16(dialect: str, expr: str) -> str:
    return f"lpad(to_hex({expr}), 16, '0')" if dialect == "postgresql" else f"printf('%016x', {expr})"


def _usage_columns() -> str:
    return ("id, request_id, organization_id, endpoint, provider, model, input_tokens, output_tokens, cached_tokens,"
            " provider_cost_micros, billed_cost_micros, margin_bps, latency_ms, upstream_latency_ms, status, attempt,"
            " streamed, cached, byok, created_at")


def create_wallets(engine: Engine, wallets: int, prefix: str = "pf") -> None:
    """W organizations `org_<prefix><i>`, each with wallet `wal_<prefix><i>`, balance 0."""
    with engine.begin() as conn:
        conn.execute(text(
            f"{sequence(engine.dialect.name, 0, wallets - 1)} INSERT INTO organizations (id, name, slug, plan, status, timezone,"
            f" created_at, allow_code_auth, cache_enabled) SELECT 'org_{prefix}' || n, 'Prefill ' || n, '{prefix}-' || n,"
            f" 'free', 'active', 'UTC', {OLD}, false, true FROM seq"
        ))
        conn.execute(text(
            "INSERT INTO wallets (id, organization_id, currency, balance_micros, held_micros, low_balance_threshold_micros,"
            f" low_balance_alerted, created_at) SELECT 'wal_{prefix}' || substr(id, {len(prefix) + 5}), id, 'USD', 0, 0, 0,"
            f" false, created_at FROM organizations WHERE id LIKE 'org_{prefix}%'"
        ))


def ledger(engine: Engine, start: int, stop: int, wallets: int, *, prefix: str = "pf", created: str = OLD,
           base_ns: int = BASE_NS, id_offset: int = 0) -> None:
    """Ledger entries start..stop (and the usage records of their debits); their ids are
    shifted by `id_offset` past the entries already there."""
    dialect = engine.dialect.name
    use_id = f"'use_' || {_hex16(dialect, f'{base_ns} + n')} || '000000000000'"
    # j: how many of the wallet's entries there are up to n (wallet 0's first id is W itself).
    j = f"(CASE WHEN n % {wallets} = 0 THEN n / {wallets} ELSE n / {wallets} + 1 END)"
    first_is_odd = f"(n % {wallets} = 0 OR (n % {wallets}) % 2 = 1)"
    odd = f"(CASE WHEN {first_is_odd} THEN ({j} + 1) / 2 ELSE {j} / 2 END)"
    org = f"'org_{prefix}' || (n % {wallets})"
    with engine.begin() as conn:
        conn.execute(text(
            f"{sequence(dialect, start, stop)} INSERT INTO usage_records ({_usage_columns()})"
            f" SELECT {use_id}, 'req_' || n, {org}, 'chat', 'mock', 'mock-chat', 10, 10, 0, 300, 400,"
            f" 3333, 1, 1, 'success', 1, false, false, false, {created} FROM seq WHERE n % 2 = 0"
        ))
        conn.execute(text(
            f"{sequence(dialect, start, stop)} INSERT INTO ledger_entries (id, wallet_id, organization_id, kind, amount_micros,"
            " balance_after_micros, usage_record_id, created_at)"
            f" SELECT n + {id_offset}, 'wal_{prefix}' || (n % {wallets}), {org},"
            " CASE WHEN n % 2 = 1 THEN 'recharge' ELSE 'debit' END, CASE WHEN n % 2 = 1 THEN 1000 ELSE -400 END,"
            f" 1000 * {odd} - 400 * ({j} - {odd}), CASE WHEN n % 2 = 0 THEN {use_id} END, {created} FROM seq"
        ))


def unbilled_usage(engine: Engine, count: int, organization_ids: list[str], *, first: int = 1) -> None:
    """`count` usage records billed 0 (cache hits), spread over the organizations; they need
    no debit, so the ledger still verifies."""
    dialect = engine.dialect.name
    # Their ids sort after the ledger's usage records (offset) and before anything of today.
    use_id = f"'use_' || {_hex16(dialect, f'{BASE_NS + 10**15} + n')} || '000000000000'"
    orgs = " ".join(f"WHEN {i} THEN '{o}'" for i, o in enumerate(organization_ids))
    for start in range(first, first + count, CHUNK):
        stop = min(first + count - 1, start + CHUNK - 1)
        with engine.begin() as conn:
            conn.execute(text(
                f"{sequence(dialect, start, stop)} INSERT INTO usage_records ({_usage_columns()})"
                f" SELECT {use_id}, 'req_c' || n, CASE n % {len(organization_ids)} {orgs} END, 'chat', 'mock', 'mock-chat',"
                f" 10, 10, 10, 0, 0, 0, 1, 0, 'success', 1, false, true, false, {OLD} FROM seq"
            ))


def settle_wallets(engine: Engine, prefix: str = "pf") -> None:
    """Each prefilled wallet's balance = the sum of its ledger."""
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE wallets SET balance_micros = COALESCE((SELECT SUM(amount_micros) FROM ledger_entries e"
            f" WHERE e.wallet_id = wallets.id), 0) WHERE id LIKE 'wal_{prefix}%'"
        ))


def prefill(engine: Engine, *, ledger_entries: int, usage_records: int, wallets: int = 1001,
            also_for: list[str] = (), log=print) -> None:
    """What `bench/gateway.py --prefill-usage` puts in first: `ledger_entries` entries over
    `wallets` other organizations (half debits, each with a usage record), topped up with
    unbilled usage records to `usage_records` in all, shared with `also_for` organizations."""
    began = time.perf_counter()
    wallets |= 1
    create_wallets(engine, wallets)
    with engine.connect() as conn:
        offset = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM ledger_entries")).scalar_one()
    for start in range(1, ledger_entries + 1, CHUNK):
        ledger(engine, start, min(ledger_entries, start + CHUNK - 1), wallets, id_offset=offset)
        log(f"prefill: {min(ledger_entries, start + CHUNK - 1):,} ledger entries")
    settle_wallets(engine)
    rest = max(0, usage_records - ledger_entries // 2)
    if rest:
        unbilled_usage(engine, rest, [*also_for, "org_pf0", "org_pf1"])
    log(f"prefill: {ledger_entries:,} ledger entries, {ledger_entries // 2 + rest:,} usage records "
        f"in {time.perf_counter() - began:.0f} s")


def main() -> None:
    """Run by bench/gateway.py with the project's interpreter (the bench itself needs none)."""
    import argparse

    from aibroker.db import make_sync_engine

    parser = argparse.ArgumentParser(description="Prefill a migrated aibroker database for a benchmark.")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--usage", type=int, required=True)
    parser.add_argument("--ledger", type=int, required=True)
    parser.add_argument("--also-for", action="append", default=[], help="organization ids sharing the unbilled usage")
    args = parser.parse_args()
    engine = make_sync_engine(args.database_url, pooled=False)
    try:
        prefill(engine, ledger_entries=args.ledger, usage_records=args.usage, also_for=args.also_for)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()

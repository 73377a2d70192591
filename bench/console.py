#!/usr/bin/env python3
"""Server time per console page (p50 / p95) at N usage records, through the analytics rollups.

    .venv/bin/python bench/console.py                         # 100k records, SQLite, short
    .venv/bin/python bench/console.py --records 1000000       # the issue's 1M
    .venv/bin/python bench/console.py --records 1000000 --pg-url postgresql://postgres@127.0.0.1:5432/aibroker_bench_console

The data comes from bench/_prefill.py (the gateway bench's generator); its unbilled records
are then given to one organization, spread over the last 45 days, five models and a 2% error
rate, so the pages have a month of real-looking numbers. The rollups are rebuilt from the
records with aibroker.ai.rollup_rebuild.rebuild_rollups. Each page is requested in-process
(ASGI, no network) by a signed-in OWNER: the time is the server's. Writes
bench/results/console.md (and prints it). Target: overview and usage under 300 ms p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from sqlalchemy import text  # noqa: E402

import _prefill  # noqa: E402
from aibroker.db import make_sync_engine  # noqa: E402
from aibroker.migrations.runner import upgrade  # noqa: E402

RESULTS = BENCH_DIR / "results" / "console.md"
ORG = "org_bc0"  # _prefill.create_wallets(prefix="bc") names it (not "pf...": the prefill matches those)
EMAIL = "bench-owner@example.com"
PASSWORD = "bench-console-pass-1"
PAGES = ("/console/overview", "/console/usage", "/console/usage?model=mock-chat&status=error", "/console/billing")
TARGET_MS = 300.0
TARGETED = ("/console/overview", "/console/usage")


def _fresh_database(kind: str, tmp: Path, pg_url: str | None) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'console.db'}"
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(pg_url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')
    return pg_url  # type: ignore[return-value]


def _spread(engine, dialect: str) -> None:  # type: ignore[no-untyped-def]
    """The prefill's unbilled records -> the bench organization's last 45 days, billed, 5 models, 2% errors."""
    n = "CAST(substr(request_id, 6) AS INTEGER)" if dialect == "sqlite" else "CAST(substr(request_id, 6) AS BIGINT)"
    minutes = f"({n} % 64800)"
    when = (f"datetime('now', '-' || {minutes} || ' minutes')" if dialect == "sqlite"
            else f"now() - {minutes} * interval '1 minute'")
    model = f"CASE {n} % 5 WHEN 0 THEN 'mock/mock-chat' WHEN 1 THEN 'mock/mock-text' WHEN 2 THEN 'mock/mock-slow' " \
            f"WHEN 3 THEN 'mock/mock-vote-a' ELSE 'mock/mock-vote-b' END"
    with engine.begin() as conn:
        conn.execute(text(
            f"UPDATE usage_records SET organization_id = '{ORG}', created_at = {when}, model = {model}, cached = ({n} % 10 = 0),"
            f" billed_cost_micros = 400 + {n} % 700, provider_cost_micros = 300 + {n} % 500, cached_tokens = 0,"
            f" status = CASE WHEN {n} % 50 = 0 THEN 'error' ELSE 'success' END, latency_ms = 20 + {n} % 400"
            " WHERE request_id LIKE 'req_c%'"
        ))


def prepare(url: str, records: int, log) -> None:  # type: ignore[no-untyped-def]
    sync_url = url.replace("+aiosqlite", "")
    upgrade(sync_url)
    engine = make_sync_engine(sync_url, pooled=False)
    try:
        started = time.perf_counter()
        _prefill.create_wallets(engine, 1, prefix="bc")
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE wallets SET balance_micros = 50000000 WHERE organization_id = '{ORG}'"))
        _prefill.prefill(engine, ledger_entries=2000, usage_records=records, also_for=[ORG], log=log)
        _spread(engine, engine.dialect.name)
        log(f"prepare: {records:,} records spread in {time.perf_counter() - started:.0f} s")
        from aibroker.ai.rollup_rebuild import rebuild_rollups

        started = time.perf_counter()
        with engine.begin() as conn:
            seen = rebuild_rollups(conn)
        with engine.connect() as conn:
            rollups = conn.execute(text("SELECT COUNT(*) FROM usage_rollups")).scalar_one()
            mine = conn.execute(text(f"SELECT COUNT(*) FROM usage_records WHERE organization_id = '{ORG}'")).scalar_one()
        log(f"prepare: rollups rebuilt from {seen:,} records ({rollups:,} rollup rows) in {time.perf_counter() - started:.0f} s;"
            f" the bench organization holds {mine:,} records")
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        else:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


async def measure(url: str, repeat: int) -> dict[str, list[float]]:
    import httpx

    os.environ["AIBROKER_DATABASE_URL"] = url
    os.environ.setdefault("AIBROKER_LOG_LEVEL", "warning")
    from aibroker.app import Services, create_app
    from aibroker.config import Settings

    settings = Settings()
    app = create_app(settings)
    services = await Services.start(settings)
    app.state.services = services
    try:
        await _owner(services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            form = await client.get("/console/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
            signed = await client.post("/console/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token})
            assert signed.status_code == 303, signed.text
            times: dict[str, list[float]] = {}
            for path in PAGES:
                for _ in range(3):  # warm-up: caches, prepared statements
                    assert (await client.get(path)).status_code == 200, path
                samples = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    answer = await client.get(path)
                    samples.append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200, (path, answer.status_code)
                times[path] = samples
            return times
    finally:
        await services.stop()


async def _owner(services) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from aibroker.kit.ids import new_id
    from aibroker.models import Membership, Organization, User
    from aibroker.tenancy import users

    async with services.db.sessions() as session:
        if await session.scalar(select(User.id).where(User.email == EMAIL)) is None:
            user = await users.create_user(session, email=EMAIL, password=PASSWORD, name="Bench owner")
            org = await session.get(Organization, ORG)
            session.add(Membership(id=new_id("mem"), organization_id=org.id, user_id=user.id, role="OWNER"))
            await session.commit()


def _pct(samples: list[float], q: int) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, -(-q * len(ordered) // 100) - 1)]


def report(kind: str, records: int, times: dict[str, list[float]], repeat: int, load: tuple[float, float]) -> str:
    lines = [f"### {kind}, {records:,} usage records ({repeat} requests per page)", "",
             f"Load average (1 min) while measuring: {load[0]:.1f} at the start, {load[1]:.1f} at the end "
             f"({os.cpu_count()} cores; the machine is shared, so a load above the core count inflates every figure).", "",
             "| page | p50 ms | p95 ms | max ms | target |", "|---|---:|---:|---:|---|"]
    for path, samples in times.items():
        p95 = _pct(samples, 95)
        target = ("met" if p95 < TARGET_MS else "MISSED") + f" (< {TARGET_MS:.0f} ms p95)" if path in TARGETED else "—"
        lines.append(f"| `{path}` | {statistics.median(samples):.1f} | {p95:.1f} | {max(samples):.1f} | {target} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--pg-url", default=None, help="also run on PostgreSQL (this database is dropped and re-created)")
    args = parser.parse_args()
    sections = []
    kinds = ["sqlite"] + (["postgresql"] if args.pg_url else [])
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
            url = _fresh_database(kind, Path(tmp), args.pg_url)
            prepare(url, args.records, lambda msg: print(msg, file=sys.stderr))
            before = os.getloadavg()[0]
            times = asyncio.run(measure(url, args.repeat))
            sections.append(report(kind, args.records, times, args.repeat, (before, os.getloadavg()[0])))
            print(sections[-1])
    header = ("# Console pages: server time\n\n`bench/console.py` — pages requested in-process (ASGI, no network) by a signed-in OWNER "
              "of an organization holding the records (45 days, 5 models), after the rollups were rebuilt.\n\n"
              f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"{time.strftime('%Y-%m-%d', time.gmtime())}.\n\n")
    RESULTS.write_text(header + "\n".join(sections))
    print(f"written to {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Many seeds of the money-path fault simulator (tests/billing/sim.py): a fleet of real
`aibroker serve` processes, one fresh wallet per seed, faults from the seed's schedule,
then the invariants. Prints one row per seed and a total; exits 1 if any seed violated one.

    .venv/bin/python bench/money_sim.py --seeds 50
    .venv/bin/python bench/money_sim.py --start 1000 --seeds 20 --database-url postgresql://postgres@127.0.0.1:5432/aibroker_sim
    .venv/bin/python bench/money_sim.py --only 17          # replay one seed (AIBROKER_SIM_SEED=17 in the test)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.billing.fleet import Fleet  # noqa: E402
from tests.billing.sim import Simulator, fleet_env  # noqa: E402

from aibroker.db import make_sync_engine  # noqa: E402
from aibroker.migrations.runner import upgrade  # noqa: E402


def _database(url: str | None, workdir: Path) -> str:
    if url is None:
        url = f"sqlite:///{workdir / 'sim.db'}"
    else:
        from sqlalchemy import text

        engine = make_sync_engine(url, pooled=False)
        with engine.begin() as conn:  # a clean slate, like the tests
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    upgrade(url)
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (default 20)")
    parser.add_argument("--start", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("--only", type=int, help="run just this seed")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds of schedule per seed")
    parser.add_argument("--database-url", help="PostgreSQL to use (its public schema is dropped!); default a temp SQLite")
    args = parser.parse_args()
    seeds = [args.only] if args.only is not None else list(range(args.start, args.start + args.seeds))
    with tempfile.TemporaryDirectory(prefix="money-sim-") as tmp:
        workdir = Path(tmp)
        url = _database(args.database_url, workdir)
        fleet = Fleet(url, workdir, mock_latency_ms=400, processes=args.processes, env=fleet_env())
        engine = make_sync_engine(url, pooled=False)
        reports = []
        try:
            fleet.start_all()
            simulator = Simulator(fleet, url, engine, duration=args.duration)
            print(f"{'seed':>6} {'requests':>9} {'kills':>6} {'pauses':>7} {'stalls':>7} {'served':>7} {'402':>5} {'violations':>11}")
            for seed in seeds:
                report = asyncio.run(simulator.run(seed))
                reports.append(report)
                served = sum(n for key, n in report.statuses.items() if key.endswith(":200"))
                refused = sum(n for key, n in report.statuses.items() if key.endswith(":402"))
                print(f"{seed:>6} {report.requests:>9} {report.kills:>6} {report.pauses:>7} {report.stalls:>7} "
                      f"{served:>7} {refused:>5} {len(report.violations):>11}", flush=True)
                for violation in report.violations[:10]:
                    print(f"       ! {violation}", flush=True)
        finally:
            fleet.stop_all()
            engine.dispose()
    total = {k: sum(getattr(r, k) for r in reports) for k in ("requests", "kills", "pauses", "stalls")}
    bad = [r.seed for r in reports if r.violations]
    print(f"{'total':>6} {total['requests']:>9} {total['kills']:>6} {total['pauses']:>7} {total['stalls']:>7} "
          f"{'':>7} {'':>5} {sum(len(r.violations) for r in reports):>11}")
    print(f"{len(seeds)} seeds, {len(bad)} with violations" + (f": {bad} (replay: --only SEED)" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

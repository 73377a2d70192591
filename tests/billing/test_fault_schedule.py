"""The money path under a seeded random fault schedule (tests/billing/sim.py): requests,
streams, client cancels, process kills and stalls, database stalls, across 3 processes.
CI runs a few seeds; replay one with AIBROKER_SIM_SEED=<seed> (bench/money_sim.py runs many)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aibroker.db import make_sync_engine
from tests.billing.fleet import Fleet
from tests.billing.sim import Simulator, fleet_env
from tests.conftest import _truncate_pg

SEEDS = [int(s) for s in os.environ["AIBROKER_SIM_SEED"].split(",")] if os.environ.get("AIBROKER_SIM_SEED") else [1, 2]


@pytest.fixture
def fleet(database_url: str, tmp_path: Path) -> Iterator[Fleet]:
    if not database_url.startswith("sqlite"):
        _truncate_pg(database_url)
    nodes = Fleet(database_url, tmp_path, mock_latency_ms=400, processes=3, env=fleet_env())
    try:
        nodes.start_all()
        yield nodes
    finally:
        nodes.stop_all()


def test_seeded_fault_schedules_keep_the_money_exact(fleet, database_url):
    engine = make_sync_engine(database_url, pooled=False)
    try:
        simulator = Simulator(fleet, database_url, engine)
        reports = [asyncio.run(simulator.run(seed)) for seed in SEEDS]
    finally:
        engine.dispose()
    for report in reports:
        print(report.line())
    failed = [r for r in reports if r.violations]
    assert not failed, "\n".join(
        f"{r.line()}\n  replay: AIBROKER_SIM_SEED={r.seed} pytest {__file__}\n  " + "\n  ".join(r.violations[:20])
        for r in failed
    )
    assert sum(r.requests for r in reports) > 0 and any(r.statuses.get("chat:200") for r in reports)

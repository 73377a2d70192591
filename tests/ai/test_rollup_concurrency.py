"""Concurrent money batches upserting the same rollup rows (the same hour, organization,
model ... from several writers at once): no deadlock, no lost increment."""

from __future__ import annotations

import datetime as dt
import random
import threading

from aibroker.ai.rollup_cubes import CUBES
from aibroker.ai.rollup_rebuild import cube_sums, rebuild_rollups
from aibroker.db import make_sync_engine
from tests.ai.rollup_data import record, write


def _snapshot(engine):
    with engine.connect() as conn:
        return {cube.table: cube_sums(conn, cube.table) for cube in CUBES}


def test_concurrent_writers_lose_no_increment(broker, database_url):
    orgs = [broker.create_org(f"C{i}", credit="100")["organization_id"] for i in range(2)]
    at = dt.datetime(2026, 11, 3, 10, 15, tzinfo=dt.UTC)
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        engine = make_sync_engine(database_url, immediate=True)
        try:
            # few distinct keys: every batch collides with the others' rows
            rows = [record(rng.choice(orgs), at + dt.timedelta(seconds=rng.randint(0, 900)), rng,
                           user_id=rng.choice(["u1", "u2"]), api_key_id=None, feature=None) for _ in range(150)]
            write(engine, rows, batch=rng.choice([5, 11, 17]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    written = _snapshot(broker.db)
    with broker.db.begin() as conn:
        assert rebuild_rollups(conn) == 600
    assert _snapshot(broker.db) == written

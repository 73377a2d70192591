"""Upserts a batch's rollup increments, on the money writer's raw cursor, inside the batch's
transaction: a usage record and its rollups commit together or not at all.

One `INSERT ... ON CONFLICT DO UPDATE SET c = c + excluded.c` per cube (SQLite and PostgreSQL
share the syntax), rows sorted by key and cubes in a fixed order, so concurrent batches lock
rows in the same order. Each writer has its own `shard`, so writers in different processes
never wait on each other's rollup rows. The organizations' time zones are cached per
connection for TZ_CACHE_SECONDS (a changed zone applies to new records within that time).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
from typing import Any

from aibroker.ai.rollup_cubes import CUBES, Cube, aggregate
from aibroker.ai.rollup_shape import zone
from aibroker.billing.rawsql import RawSql
from aibroker.models import Base

TZ_CACHE_SECONDS = 60.0
SHARDS = 64
_TZ_SQL = "SELECT id, timezone FROM organizations WHERE id IN ({marks})"
_instances = itertools.count()


def upsert_sql(cube: Cube, marks: str) -> str:
    updates = ", ".join(f'"{c}" = {cube.table}."{c}" + excluded."{c}"' for c in cube.added)
    names = ", ".join(f'"{c}"' for c in cube.columns)
    conflict = ", ".join(f'"{c}"' for c in cube.keys)
    return f'INSERT INTO {cube.table} ({names}) VALUES ({marks}) ON CONFLICT ({conflict}) DO UPDATE SET {updates}'


class CubeUpsert:
    """One cube's statement and the bind processor of its timestamp (bucket_start), resolved once."""

    def __init__(self, cube: Cube, raw: RawSql) -> None:
        self.cube = cube
        self.sql = raw.render(upsert_sql(cube, raw.marks(len(cube.columns))))
        table = Base.metadata.tables[cube.table]
        self.stamps = [(i, table.c[name].type._cached_bind_processor(raw.dialect))  # noqa: SLF001
                       for i, name in enumerate(cube.columns) if name == "bucket_start"]

    def values(self, increments: list[list[Any]]) -> list[tuple[Any, ...]]:
        for inc in increments:
            for index, process in self.stamps:
                if process is not None:
                    inc[index] = process(inc[index])
        return [tuple(inc) for inc in increments]


class RollupWriter:
    enabled = True  # bench/analytics.py turns it off to measure what the rollups cost

    def __init__(self, raw: RawSql) -> None:
        self.raw = raw
        self.upserts = [CubeUpsert(cube, raw) for cube in CUBES]
        self.shard = (os.getpid() + next(_instances)) % SHARDS
        self._zones: dict[str, tuple[dt.tzinfo, float]] = {}

    def write(self, usage_rows: list[dict[str, Any]]) -> None:
        if not usage_rows or not RollupWriter.enabled:
            return
        increments = aggregate(usage_rows, self.zones({r["organization_id"] for r in usage_rows}), self.shard)
        for upsert in self.upserts:
            self.raw.cursor.executemany(upsert.sql, upsert.values(increments[upsert.cube]))

    def zones(self, org_ids: set[str]) -> dict[str, dt.tzinfo]:
        now = time.monotonic()
        missing = sorted(o for o in org_ids if o not in self._zones or self._zones[o][1] < now)
        if missing:
            found = dict(self.raw.fetch(_TZ_SQL.format(marks=self.raw.marks(len(missing))), missing))
            for org in missing:
                self._zones[org] = (zone(found.get(org)), now + TZ_CACHE_SECONDS)
        return {o: self._zones[o][0] for o in org_ids}

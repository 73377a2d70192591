"""Upserts a batch's rollup increments, on the money writer's raw cursor, inside the batch's
transaction: a usage record and its rollup commit together or not at all.

One `INSERT ... ON CONFLICT DO UPDATE SET c = c + excluded.c` per distinct key (SQLite and
PostgreSQL share the syntax); keys are sorted so concurrent batches lock rows in the same
order. The organizations' time zones are cached per connection for TZ_CACHE_SECONDS (a
changed zone applies to new records within that time).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from aibroker.ai.rollup_shape import DIMENSIONS, HIST_COLUMNS, MEASURES, aggregate, zone
from aibroker.billing.rawsql import RawSql, processor

TZ_CACHE_SECONDS = 60.0
_ADDED = (*MEASURES, *HIST_COLUMNS)
_COLUMNS = (*DIMENSIONS, "local_date", *_ADDED)
_TZ_SQL = "SELECT id, timezone FROM organizations WHERE id IN ({marks})"


class RollupWriter:
    enabled = True  # bench/analytics.py turns it off to measure what the rollups cost

    def __init__(self, raw: RawSql, table: Any) -> None:
        self.raw = raw
        marks = raw.marks(len(_COLUMNS))
        updates = ", ".join(f'"{c}" = usage_rollups."{c}" + excluded."{c}"' for c in _ADDED)
        names = ", ".join(f'"{c}"' for c in _COLUMNS)
        conflict = ", ".join(f'"{c}"' for c in DIMENSIONS)
        self.sql = f'INSERT INTO usage_rollups ({names}) VALUES ({marks}) ON CONFLICT ({conflict}) DO UPDATE SET {updates}'
        self.stamp = processor(table.c.bucket_start, raw) or (lambda v: v)
        self._zones: dict[str, tuple[dt.tzinfo, float]] = {}

    def write(self, usage_rows: list[dict[str, Any]]) -> None:
        if not usage_rows or not RollupWriter.enabled:
            return
        increments = aggregate(usage_rows, self.zones({r["organization_id"] for r in usage_rows}))
        values = []
        for inc in increments:
            row = [inc[c] for c in _COLUMNS]
            row[1] = self.stamp(row[1])
            values.append(tuple(row))
        self.raw.cursor.executemany(self.raw.render(self.sql), values)

    def zones(self, org_ids: set[str]) -> dict[str, dt.tzinfo]:
        now = time.monotonic()
        missing = sorted(o for o in org_ids if o not in self._zones or self._zones[o][1] < now)
        if missing:
            found = dict(self.raw.fetch(_TZ_SQL.format(marks=self.raw.marks(len(missing))), missing))
            for org in missing:
                self._zones[org] = (zone(found.get(org)), now + TZ_CACHE_SECONDS)
        return {o: self._zones[o][0] for o in org_ids}

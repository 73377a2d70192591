"""Recompute the rollups from the usage records (a migration's backfill, the tests' and the
benchmark's reference): the same aggregation and upserts the write path applies, a chunk of
records at a time, so memory stays flat however many records there are."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, MetaData, Table, delete, select

from aibroker.ai.rollup_cubes import CUBES, aggregate
from aibroker.ai.rollup_shape import zone
from aibroker.ai.rollup_writer import CubeUpsert
from aibroker.billing.rawsql import RawSql

CHUNK = 20_000
_READ = ("id", "organization_id", "model", "provider", "feature", "user_id", "api_key_id", "status", "attempt",
         "cached", "input_tokens", "output_tokens", "cached_tokens", "cache_saved_micros", "provider_cost_micros",
         "billed_cost_micros", "latency_ms", "created_at")


def rebuild_rollups(conn: Connection) -> int:
    """Replace every rollup cube with one computed from the records; returns the number of
    records read. Run it while nothing writes usage (a migration, a maintenance window)."""
    meta = MetaData()
    records = Table("usage_records", meta, autoload_with=conn)
    orgs = Table("organizations", meta, autoload_with=conn)
    zones = {org: zone(tz) for org, tz in conn.execute(select(orgs.c.id, orgs.c.timezone))}
    for cube in CUBES:
        conn.execute(delete(Table(cube.table, meta, autoload_with=conn)))
    raw = RawSql(conn)
    upserts = [CubeUpsert(cube, raw) for cube in CUBES]
    query = select(*[records.c[c] for c in _READ]).order_by(records.c.id)
    seen, last = 0, None
    while True:  # keyset pages: no server-side cursor held open across the upserts
        page = query.where(records.c.id > last) if last is not None else query
        rows = [_aware(dict(r._mapping)) for r in conn.execute(page.limit(CHUNK))]
        if not rows:
            return seen
        seen += len(rows)
        last = rows[-1]["id"]
        increments = aggregate(rows, zones)
        for upsert in upserts:
            values = upsert.values(increments[upsert.cube])
            if values:
                raw.cursor.executemany(upsert.sql, values)


def cube_sums(conn: Connection, table: str) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """A cube's rows summed over the shards: {key without shard: added values} (tests compare
    what the write path built with a rebuild)."""
    cube = next(c for c in CUBES if c.table == table)
    out: dict[tuple[Any, ...], list[int]] = {}
    rows = conn.execute(select(Table(table, MetaData(), autoload_with=conn)))
    for row in rows:
        data = row._mapping
        key = tuple(_plain(data[k]) for k in cube.keys[:-1])
        have = out.setdefault(key, [0] * len(cube.added))
        for i, name in enumerate(cube.added):
            have[i] += int(data[name])
    return {k: tuple(v) for k, v in out.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return value


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    created = row["created_at"]
    if isinstance(created, str):
        created = dt.datetime.fromisoformat(created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    row["created_at"] = created
    return row


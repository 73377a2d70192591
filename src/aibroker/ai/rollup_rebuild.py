"""Recompute the rollups from the usage records (a migration's backfill, `aibroker analytics
rebuild`, the benchmark's reference): the same aggregation the write path applies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, MetaData, Table, delete, select

from aibroker.ai.rollup_shape import DIMENSIONS, HIST_COLUMNS, MEASURES, aggregate, zone

CHUNK = 20_000
_READ = ("id", "organization_id", "model", "provider", "feature", "user_id", "api_key_id", "status", "attempt",
         "cached", "input_tokens", "output_tokens", "cached_tokens", "provider_cost_micros", "billed_cost_micros",
         "latency_ms", "created_at")


def rebuild_rollups(conn: Connection, organization_id: str | None = None) -> int:
    """Replace the rollups (of one organization, or all) with ones computed from the records.
    Returns the number of records read. Run it while nothing writes usage for that scope."""
    meta = MetaData()
    records = Table("usage_records", meta, autoload_with=conn)
    rollups = Table("usage_rollups", meta, autoload_with=conn)
    orgs = Table("organizations", meta, autoload_with=conn)
    zones = {org: zone(tz) for org, tz in conn.execute(select(orgs.c.id, orgs.c.timezone))}
    wipe = delete(rollups)
    if organization_id is not None:
        wipe = wipe.where(rollups.c.organization_id == organization_id)
    conn.execute(wipe)
    totals: dict[tuple[Any, ...], dict[str, Any]] = {}
    query = select(*[records.c[c] for c in _READ]).order_by(records.c.id)
    if organization_id is not None:
        query = query.where(records.c.organization_id == organization_id)
    seen = 0
    for part in conn.execute(query.execution_options(yield_per=CHUNK)).partitions(CHUNK):
        seen += len(part)
        rows = [_aware(dict(r._mapping)) for r in part]
        for inc in aggregate(rows, zones):
            key = tuple(inc[d] for d in DIMENSIONS)
            have = totals.get(key)
            if have is None:
                totals[key] = inc
            else:
                for name in (*MEASURES, *HIST_COLUMNS):
                    have[name] += inc[name]
    values = list(totals.values())
    for start in range(0, len(values), CHUNK):
        conn.execute(rollups.insert(), values[start:start + CHUNK])
    return seen


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    created = row["created_at"]
    if isinstance(created, str):
        created = dt.datetime.fromisoformat(created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    row["created_at"] = created
    return row

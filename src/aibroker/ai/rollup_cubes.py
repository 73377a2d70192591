"""The four rollup cubes and how a batch of usage records becomes their increments.

Each query of the analytics reads the one cube whose grain fits it (analytics_repository.py):
- `usage_rollups`: organization x hour of its zone x model x provider x feature, with the
  latency histogram: a tenant's totals, series and model / provider / feature breakdowns.
- `usage_rollups_users`: organization x local day x user x API key (with the histogram): the
  user and key breakdowns and top users. Its grain is the day: a day counts when it overlaps.
- `usage_rollups_platform`: UTC hour x provider x model x feature (histogram): the platform's
  totals, series and breakdowns, independent of the number of organizations.
- `usage_rollups_orgs`: organization x UTC day, money only: revenue, cost and margin per
  organization for the platform.
Splitting the grains keeps every cube small: a row per user per hour would be nearly a row
per record for the many small organizations of a platform.

An increment is a list in the cube's column order (keys, derived columns, measures, then the
histogram): this runs inside the money writer's transaction, so it builds no dicts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from aibroker.ai.rollup_shape import HIST_COLUMNS, MEASURES, MONEY_MEASURES, bucket_of, contribution, latency_bin, utc_hour

HOURLY_GRAIN, USERS_GRAIN, PLATFORM_GRAIN, ORGS_GRAIN = range(4)


@dataclass(frozen=True, slots=True)
class Cube:
    table: str
    grain: int
    keys: tuple[str, ...]  # the primary key, shard last
    extra: tuple[str, ...]  # derived columns beside the key
    measures: tuple[str, ...]
    histogram: bool
    added: tuple[str, ...] = field(init=False)  # the summed columns: measures, then the histogram
    columns: tuple[str, ...] = field(init=False)
    # where each measure sits in a contribution, and in an increment
    picks: tuple[tuple[int, int], ...] = field(init=False)
    hist_at: int = field(init=False)

    def __post_init__(self) -> None:
        added = (*self.measures, *HIST_COLUMNS) if self.histogram else self.measures
        offset = len(self.keys) + len(self.extra)
        object.__setattr__(self, "added", added)
        object.__setattr__(self, "columns", (*self.keys, *self.extra, *added))
        object.__setattr__(self, "picks", tuple((offset + i, MEASURES.index(m)) for i, m in enumerate(self.measures)))
        object.__setattr__(self, "hist_at", offset + len(self.measures) if self.histogram else -1)


HOURLY = Cube("usage_rollups", HOURLY_GRAIN, ("organization_id", "bucket_start", "model", "provider", "feature", "shard"),
              ("local_date",), MEASURES, True)
USERS = Cube("usage_rollups_users", USERS_GRAIN, ("organization_id", "local_date", "user_id", "api_key_id", "shard"), (),
             MEASURES, True)
PLATFORM = Cube("usage_rollups_platform", PLATFORM_GRAIN, ("bucket_start", "provider", "model", "feature", "shard"),
                ("day",), MEASURES, True)
ORGS = Cube("usage_rollups_orgs", ORGS_GRAIN, ("organization_id", "day", "shard"), (), MONEY_MEASURES, False)
CUBES = (HOURLY, USERS, PLATFORM, ORGS)  # also the order every writer takes row locks in


def _keys(row: dict[str, Any], tz: dt.tzinfo, shard: int) -> tuple[tuple[tuple[Any, ...], tuple[Any, ...]], ...]:
    """(key, derived columns) of a record in each cube, in CUBES order."""
    created, org = row["created_at"], row["organization_id"]
    local_hour, local_date = bucket_of(created, tz)
    hour = utc_hour(created)
    model, provider, feature = row.get("model") or "", row.get("provider") or "", row.get("feature") or ""
    return (
        ((org, local_hour, model, provider, feature, shard), (local_date,)),
        ((org, local_date, row.get("user_id") or "", row.get("api_key_id") or "", shard), ()),
        ((hour, provider, model, feature, shard), (hour.date().isoformat(),)),
        ((org, hour.date().isoformat(), shard), ()),
    )


_ZEROS: dict[int, tuple[int, ...]] = {}


def _zeros(count: int) -> tuple[int, ...]:
    zeros = _ZEROS.get(count)
    if zeros is None:
        zeros = _ZEROS[count] = (0,) * count
    return zeros


def aggregate(rows: list[dict[str, Any]], zones: dict[str, dt.tzinfo], shard: int = 0) -> dict[Cube, list[list[Any]]]:
    """Each cube's increments for a batch of usage records, one per key, sorted by key (every
    writer takes row locks in the same order, so two batches never deadlock)."""
    merged: list[dict[tuple[Any, ...], list[Any]]] = [{} for _ in CUBES]
    for row in rows:
        add = contribution(row)
        hist = latency_bin(int(row.get("latency_ms") or 0)) if add[-1] else None  # latency_count: answered
        for cube, found, (key, extra) in zip(CUBES, merged, _keys(row, zones.get(row["organization_id"], dt.UTC), shard)):
            target = found.get(key)
            if target is None:
                target = found[key] = [*key, *extra, *_zeros(len(cube.added))]
            for at, pick in cube.picks:
                target[at] += add[pick]
            if hist is not None and cube.hist_at >= 0:
                target[cube.hist_at + hist] += 1
    return {cube: [found[k] for k in sorted(found)] for cube, found in zip(CUBES, merged)}

"""bench/analytics.py's large runs on PostgreSQL: the month of usage records generated inside
the database (no rows cross the wire) with the same shape as _analytics_data.py (one
organization with 10% of the records, the rest falling off as 1/rank, six models, three
features, 95% answered, 10% of answers cached, log-normal latency), and the four rollup
cubes built from them by GROUP BY with the write path's definitions (ai/rollup_shape.py:
requests, failed attempts, the latency bins). Every organization is in UTC here, so local
hours and days are UTC ones. The report's "same totals" column checks the cubes against
the raw records."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

from aibroker.ai.rollup_cubes import HOURLY, ORGS, PLATFORM, USERS, Cube
from aibroker.ai.rollup_shape import LATENCY_BINS

CHUNK = 1_000_000
MONTH_SQL = "timestamptz '2026-11-01 00:00:00+00'"
SECONDS = 30 * 86400
_MODELS = "(ARRAY['openai/gpt-4o-mini','openai/gpt-4o','anthropic/claude-3-5-haiku','anthropic/claude-sonnet-4'," \
          "'google/gemini-2.0-flash','mock-chat'])"
_PROVIDERS = "(ARRAY['openai','openai','anthropic','anthropic','google','mock'])"
_FEATURES = "(ARRAY['CHAT_RESPONSE','SUMMARY','SENTIMENT'])"

# r: one row's random draws; then the record (mirrors _analytics_data.org_records)
_RECORDS = f"""
INSERT INTO usage_records (id, request_id, organization_id, api_key_id, user_id, feature, endpoint, provider, model,
    input_tokens, output_tokens, cached_tokens, cache_saved_micros, provider_cost_micros, billed_cost_micros, margin_bps,
    latency_ms, upstream_latency_ms, status, attempt, streamed, cached, byok, created_at)
SELECT 'use_' || lpad(to_hex(g), 16, '0'), 'req_' || lpad(to_hex(g), 16, '0'), 'org_' || lpad(org::text, 5, '0'),
       'key_' || org || '_' || (g % 2), 'u' || LEAST(50, floor(-ln(1 - u_user) / 0.3))::int,
       {_FEATURES}[f + 1], 'chat', {_PROVIDERS}[f * 2 + m + 1], {_MODELS}[f * 2 + m + 1],
       CASE WHEN answered THEN 10 + floor(u_in * 1990)::int ELSE 0 END,
       CASE WHEN answered THEN 1 + floor(u_out * 799)::int ELSE 0 END, 0,
       CASE WHEN cached THEN 1 + floor(u_cost * 3999)::int ELSE 0 END,
       cost, (cost * 13 + 9) / 10, 3000,
       CASE WHEN answered THEN exp(6.3 + 0.8 * sqrt(-2 * ln(u_l1)) * cos(2 * pi() * u_l2))::int ELSE floor(u_l1 * 30)::int END,
       0, status, CASE WHEN answered THEN 1 ELSE 0 END, false, cached, false,
       {MONTH_SQL} + make_interval(secs => u_t * {SECONDS})
FROM (
  SELECT g, org, f, m, status, answered, cached, u_user, u_in, u_out, u_cost, u_l1, u_l2, u_t,
         CASE WHEN answered AND NOT cached THEN 5 + floor(u_cost * 3995)::bigint ELSE 0 END AS cost
  FROM (
    SELECT g, org, f, m, status, status IN ('success', 'partial') AS answered,
           status IN ('success', 'partial') AND u_cache < 0.1 AS cached, u_user, u_in, u_out, u_cost, u_l1, u_l2, u_t
    FROM (
      SELECT g,
             CASE WHEN u_org < 0.1 THEN 0 ELSE LEAST(CAST(:orgs AS int) - 1, floor(exp(random() * ln(CAST(:orgs AS int))))::int) END AS org,
             LEAST(2, floor(1 / sqrt(1 - random())) - 1)::int AS f, (random() < 0.2)::int AS m,
             CASE WHEN u_status < 0.95 THEN 'success' ELSE (ARRAY['error','refused','partial'])[1 + floor(random() * 3)::int] END
               AS status,
             random() AS u_cache, random() AS u_user, random() AS u_in, random() AS u_out, random() AS u_cost,
             1 - random() AS u_l1, random() AS u_l2, random() AS u_t
      FROM (SELECT g, random() AS u_org, random() AS u_status FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g) s
    ) a
  ) b
) c
"""


def _sums(cube: Cube) -> str:
    failed = "(status = 'error' AND attempt >= 1)"
    answered = f"(status IN ('success', 'partial') AND NOT {failed})"
    hit = f"(cached AND {answered})"
    measure = {
        "requests": f"SUM(CASE WHEN {failed} THEN 0 ELSE 1 END)",
        "errors": f"SUM(CASE WHEN status = 'error' AND NOT {failed} THEN 1 ELSE 0 END)",
        "refused": "SUM(CASE WHEN status = 'refused' THEN 1 ELSE 0 END)",
        "failed_attempts": f"SUM(CASE WHEN {failed} THEN 1 ELSE 0 END)",
        "cache_hits": f"SUM(CASE WHEN {hit} THEN 1 ELSE 0 END)",
        "input_tokens": "SUM(input_tokens)", "output_tokens": "SUM(output_tokens)", "cached_tokens": "SUM(cached_tokens)",
        "cache_saved_micros": f"SUM(CASE WHEN {hit} THEN cache_saved_micros ELSE 0 END)",
        "provider_cost_micros": "SUM(provider_cost_micros)", "billed_cost_micros": "SUM(billed_cost_micros)",
        "latency_ms_sum": f"SUM(CASE WHEN {answered} THEN latency_ms ELSE 0 END)",
        "latency_count": f"SUM(CASE WHEN {answered} THEN 1 ELSE 0 END)",
    }
    parts = [measure[m] for m in cube.measures]
    if cube.histogram:  # bin = how many quarter-octave lower bounds ceil(2^(j/4)) are <= ms (rollup_shape.latency_bin)
        parts += [f"SUM(CASE WHEN {answered} AND bin = {i} THEN 1 ELSE 0 END)" for i in range(LATENCY_BINS)]
    return ", ".join(parts)


_BIN = f"CASE WHEN latency_ms <= 0 THEN 0 ELSE LEAST({LATENCY_BINS - 1}, floor(4 * ln(latency_ms) / ln(2) + 1e-9)::int + 1) END"
_GROUPS = {
    HOURLY: ("organization_id, date_trunc('hour', created_at), model, provider, coalesce(feature, ''), 0,"
             " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
    USERS: "organization_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), coalesce(user_id, ''), coalesce(api_key_id, ''), 0",
    PLATFORM: ("date_trunc('hour', created_at), provider, model, coalesce(feature, ''), 0,"
               " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
    ORGS: "organization_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 0",
}


def load_sql(engine: Any, records: int, orgs: int, seed: int = 15) -> dict[str, Any]:
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET TIME ZONE 'UTC'"))
        conn.execute(text("SELECT setseed(:s)"), {"s": seed / 100})
        conn.execute(text(
            "INSERT INTO organizations (id, name, slug, plan, status, timezone, cache_enabled, allow_code_auth, created_at)"
            " SELECT 'org_' || lpad(n::text, 5, '0'), 'Org ' || n, 'org-' || lpad(n::text, 5, '0'), 'free', 'active', 'UTC',"
            " true, false, now() FROM generate_series(0, CAST(:orgs AS int) - 1) AS n"), {"orgs": orgs})
        for start in range(0, records, CHUNK):
            conn.execute(text(_RECORDS), {"orgs": orgs, "start": start, "stop": min(records, start + CHUNK) - 1})
        conn.execute(text("SET TIME ZONE 'UTC'"))
        cube_rows = {}
        for cube in (HOURLY, USERS, PLATFORM, ORGS):
            columns = ", ".join(f'"{c}"' for c in cube.columns)
            keys = ", ".join(str(i + 1) for i in range(len(cube.keys) + len(cube.extra)))  # by position: the shard is a constant
            done = conn.execute(text(
                f"INSERT INTO {cube.table} ({columns}) SELECT {_GROUPS[cube]}, {_sums(cube)}"
                f" FROM (SELECT *, {_BIN} AS bin FROM usage_records) r GROUP BY {keys}"))
            cube_rows[cube.table] = done.rowcount
        largest = conn.execute(text("SELECT count(*) FROM usage_records WHERE organization_id = 'org_00000'")).scalar()
    loaded = time.perf_counter() - started
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("usage_records", *(c.table for c in (HOURLY, USERS, PLATFORM, ORGS))):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    return {"records": records, "organizations": orgs, "rollup_rows": sum(cube_rows.values()), "cube_rows": cube_rows,
            "largest": largest, "load_seconds": round(loaded, 1)}

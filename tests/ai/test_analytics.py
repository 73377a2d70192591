"""GET /api/ai/analytics against sums computed from the raw usage records: across hour, day
and month boundaries, organization time zones (a DST change, a half-hour offset), tenants
and the platform view, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import openai
import pytest

from aibroker.billing.audit import verify
from tests.ai.rollup_data import (
    aware,
    debits,
    exact_percentile,
    failed_attempt,
    grouped,
    local_day,
    local_hour,
    record,
    set_timezone,
    stored,
    sums,
    write,
)
from tests.support.broker import ADMIN_TOKEN

ZONES = {"ny": "America/New_York", "kolkata": "Asia/Kolkata", "utc": "UTC"}
KEYS = ("requests", "errors", "refused", "failed_attempts", "cost_micros", "provider_cost_micros", "input_tokens",
        "output_tokens", "cache_hits", "cache_savings_micros")


def _instants(tz: str, rng: random.Random) -> list[dt.datetime]:
    zone = ZoneInfo(tz)
    local = [
        dt.datetime(2026, 10, 31, 23, 59, 59, 999999), dt.datetime(2026, 11, 1, 0, 0, 0),  # the month begins
        dt.datetime(2026, 11, 1, 0, 59, 59, 999999), dt.datetime(2026, 11, 1, 1, 0, 0),  # an hour turns
        dt.datetime(2026, 11, 15, 23, 59, 59), dt.datetime(2026, 11, 16, 0, 0, 1),  # a day turns
        dt.datetime(2026, 11, 30, 23, 59, 59, 999999), dt.datetime(2026, 12, 1, 0, 0, 0),  # the month ends
    ]
    instants = [t.replace(tzinfo=zone) for t in local]
    if tz == "America/New_York":  # 01:30 happens twice on 2026-11-01 (DST ends at 02:00)
        instants += [dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC)]
    start = dt.datetime(2026, 10, 30, tzinfo=dt.UTC)
    instants += [start + dt.timedelta(seconds=rng.randint(0, 33 * 86400)) for _ in range(140)]
    return [t.astimezone(dt.UTC) for t in instants]


@pytest.fixture
def workload(broker):
    """Three organizations in three zones, ~150 records each, written through the batch."""
    rng = random.Random(15)
    orgs = {}
    rows = []
    for name, tz in ZONES.items():
        org = broker.create_org(name, credit="100")
        set_timezone(broker.db, org["organization_id"], tz)
        orgs[name] = org
        for at in _instants(tz, rng):
            rows.append(record(org["organization_id"], at, rng))
            if rng.random() < 0.1:
                rows.append(failed_attempt(org["organization_id"], at, rng))
    rng.shuffle(rows)
    write(broker.db, rows)
    return orgs


def _november(rows, tz):
    return [r for r in rows if local_day(tz)(r).startswith("2026-11")]


def _get(broker, key, **params):
    with broker.client(key) as http:
        response = http.get("/api/ai/analytics", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _pick(data):
    return {k: data[k] for k in KEYS}


@pytest.mark.parametrize("name", list(ZONES))
def test_tenant_totals_and_days_equal_the_raw_records(broker, workload, name):
    tz, org = ZONES[name], workload[name]
    rows = _november(stored(broker.db, [org["organization_id"]]), tz)
    report = _get(broker, org["api_key"], **{"from": "2026-11-01", "to": "2026-12-01", "group_by": "day"})
    assert report["time_zone"] == tz and report["organization_id"] == org["organization_id"]
    assert _pick(report["totals"]) == sums(rows)
    assert {s["key"]: _pick(s) for s in report["series"]} == grouped(rows, local_day(tz))
    # the month's first and last local instants are in; one microsecond either side is not
    assert {s["key"] for s in report["series"]} >= {"2026-11-01", "2026-11-30"}
    assert all(s["key"].startswith("2026-11") for s in report["series"])
    for field, q in (("latency_ms_p50", 50), ("latency_ms_p95", 95), ("latency_ms_p99", 99)):
        exact = exact_percentile(rows, q)
        assert abs(report["totals"][field] - exact) <= max(1, 0.095 * exact), (field, report["totals"][field], exact)


def test_hours_follow_the_zone_through_a_dst_change(broker, workload):
    tz, org = ZONES["ny"], workload["ny"]
    rows = [r for r in stored(broker.db, [org["organization_id"]])
            if dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC) <= aware(r.created_at) < dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)]
    report = _get(broker, org["api_key"], **{"from": "2026-11-01T04:00:00Z", "to": "2026-11-01T08:00:00Z", "group_by": "hour"})
    hours = {s["key"]: _pick(s) for s in report["series"]}
    assert hours == grouped(rows, local_hour(tz))
    # 01:00-02:00 local twice: once at -04:00, once at -05:00
    assert {"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"} <= set(hours)


def test_half_hour_zone_buckets_start_at_half_past(broker, workload):
    org = workload["kolkata"]
    report = _get(broker, org["api_key"], **{"from": "2026-11-01", "to": "2026-11-02", "group_by": "hour"})
    assert report["series"], "the day has records"
    assert all(s["key"].endswith(":00:00+05:30") for s in report["series"])
    rows = [r for r in stored(broker.db, [org["organization_id"]]) if local_day(ZONES["kolkata"])(r) == "2026-11-01"]
    assert _pick(report["totals"]) == sums(rows)


@pytest.mark.parametrize("group_by,column", [("model", "model"), ("provider", "provider"), ("feature", "feature"),
                                             ("user", "user_id"), ("key", "api_key_id")])
def test_dimensions_equal_the_raw_records(broker, workload, group_by, column):
    org = workload["utc"]
    rows = _november(stored(broker.db, [org["organization_id"]]), "UTC")
    report = _get(broker, org["api_key"], **{"from": "2026-11-01", "to": "2026-12-01", "group_by": group_by})
    assert {s["key"]: _pick(s) for s in report["series"]} == grouped(rows, lambda r: getattr(r, column))
    costs = [s["cost_micros"] for s in report["series"]]
    assert costs == sorted(costs, reverse=True)


def test_billed_totals_equal_the_wallet_debits_and_the_ledger_verifies(broker, workload):
    for name, org in workload.items():
        report = _get(broker, org["api_key"], **{"from": "2026-10-01", "to": "2026-12-31"})
        assert report["totals"]["cost_micros"] == debits(broker.db, org["organization_id"]) > 0, name
    assert verify(broker.db).ok


def test_top_users_rank_by_cost(broker, workload):
    org = workload["utc"]
    rows = _november(stored(broker.db, [org["organization_id"]]), "UTC")
    report = _get(broker, org["api_key"], **{"from": "2026-11-01", "to": "2026-12-01"})
    by_user = grouped([r for r in rows if r.user_id], lambda r: r.user_id)
    expected = sorted(((u, s["cost_micros"]) for u, s in by_user.items()), key=lambda p: -p[1])
    assert [(u["user_id"], u["cost_micros"]) for u in report["totals"]["top_users"]] == expected


def test_platform_view_spans_organizations_and_splits_revenue(broker, workload):
    everything = stored(broker.db)
    report = _get(broker, ADMIN_TOKEN, **{"from": "2026-10-25", "to": "2026-12-05"})
    assert report["organization_id"] is None
    assert _pick(report["totals"]) == sums(everything)
    platform = report["platform"]
    assert platform["organizations_count"] == 3
    revenue = {o["organization_id"]: o["revenue_micros"] for o in platform["organizations"]}
    assert revenue == {org["organization_id"]: debits(broker.db, org["organization_id"]) for org in workload.values()}
    for entry in platform["providers"]:
        mine = [r for r in everything if r.provider == entry["provider"]]
        assert entry["provider_cost_micros"] == sum(r.provider_cost_micros for r in mine)
        assert entry["margin_micros"] == entry["revenue_micros"] - entry["provider_cost_micros"]
    one = workload["kolkata"]
    scoped = _get(broker, ADMIN_TOKEN, organization_id=one["organization_id"], **{"from": "2026-11-01", "to": "2026-12-01"})
    assert scoped["time_zone"] == "Asia/Kolkata"
    assert _pick(scoped["totals"]) == sums(_november(stored(broker.db, [one["organization_id"]]), "Asia/Kolkata"))


@pytest.mark.parametrize("group_by,key", [
    ("day", lambda r: aware(r.created_at).astimezone(dt.UTC).date().isoformat()),
    ("hour", lambda r: aware(r.created_at).astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0).isoformat()),
    ("provider", lambda r: r.provider), ("model", lambda r: r.model), ("feature", lambda r: r.feature),
])
def test_platform_series_equal_the_raw_records_of_all_organizations(broker, workload, group_by, key):
    """The platform cube (UTC hours, no organization in its key) against every record."""
    start, end = dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)
    rows = [r for r in stored(broker.db) if start <= aware(r.created_at) < end]
    report = _get(broker, ADMIN_TOKEN, **{"from": "2026-11-01T00:00:00Z", "to": "2026-11-20T06:00:00Z", "group_by": group_by})
    assert report["time_zone"] == "UTC" and report["totals"]["top_users"] == []
    assert _pick(report["totals"]) == sums(rows)
    assert {s["key"]: _pick(s) for s in report["series"]} == grouped(rows, key)
    for field, q in (("latency_ms_p50", 50), ("latency_ms_p99", 99)):
        exact = exact_percentile(rows, q)
        assert abs(report["totals"][field] - exact) <= max(1, 0.095 * exact), (field, report["totals"][field], exact)
    # revenue per organization counts whole UTC days: the range's last day, 11-20, entirely
    revenue = {o["organization_id"]: o["revenue_micros"] for o in report["platform"]["organizations"]}
    whole_days = [r for r in stored(broker.db) if start <= aware(r.created_at) < dt.datetime(2026, 11, 21, tzinfo=dt.UTC)]
    assert revenue == {org: s["cost_micros"] for org, s in grouped(whole_days, lambda r: r.organization_id).items()}


def test_user_and_key_breakdowns_count_whole_local_days(broker, workload):
    """Their cube's grain is the organization's day: a day counts when it overlaps the range."""
    tz, org = ZONES["ny"], workload["ny"]
    report = _get(broker, org["api_key"], **{"from": "2026-11-15T12:00:00", "to": "2026-11-16T06:00:00", "group_by": "user"})
    days = {"2026-11-15", "2026-11-16"}
    rows = [r for r in stored(broker.db, [org["organization_id"]]) if local_day(tz)(r) in days]
    assert {s["key"]: _pick(s) for s in report["series"]} == grouped(rows, lambda r: r.user_id)


def test_tenants_see_only_their_own_organization(broker, workload):
    mine, other = workload["utc"], workload["ny"]
    with broker.client(mine["api_key"]) as http:
        assert http.get("/api/ai/analytics", params={"organization_id": other["organization_id"]}).status_code == 404
        own = http.get("/api/ai/analytics", params={"from": "2026-10-01", "to": "2026-12-31"}).json()
    assert "platform" not in own
    assert own["totals"]["requests"] == sums(stored(broker.db, [mine["organization_id"]]))["requests"]
    with broker.client() as anonymous:
        assert anonymous.get("/api/ai/analytics").status_code == 401


@pytest.mark.parametrize("params,code", [
    ({"group_by": "week"}, "invalid_group_by"), ({"from": "2026-12-01", "to": "2026-11-01"}, "invalid_range"),
    ({"from": "yesterday"}, None), ({"from": "2020-01-01", "to": "2026-01-01"}, "range_too_long"),
    ({"from": "0001-01-01"}, None),
])
def test_bad_parameters_are_clear_400s(broker, params, code):
    org = broker.create_org("Bad", credit="1")
    with broker.client(org["api_key"]) as http:
        response = http.get("/api/ai/analytics", params=params)
    assert response.status_code == 400, response.text
    if code:
        assert response.json()["error"]["code"] == code


def test_a_request_counts_the_moment_its_answer_is_sent(broker, upstream):
    org = broker.create_org("Live", credit="5")
    client = openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], user="ana")
    report = _get(broker, org["api_key"], group_by="hour")  # no flush: the answer's commit carried the rollup
    assert report["totals"]["requests"] == 3 and report["totals"]["cost_micros"] > 0
    assert report["totals"]["cost_micros"] == debits(broker.db, org["organization_id"])
    assert report["totals"]["top_users"][0]["user_id"] == "ana"
    projection = report["projection"]
    assert projection["month_to_date_cost_micros"] == report["totals"]["cost_micros"]
    assert projection["projected_cost_micros"] >= projection["month_to_date_cost_micros"]


def test_a_cache_hit_records_what_it_saved(broker, upstream):
    """A hit (billed nothing by default) saves what the same call cost fresh; the saving is
    on the usage record and in the totals, for the tenant and for the platform."""
    org = broker.create_org("Saver", credit="5")
    client = openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)
    ask = {"model": "gpt-4o-mini", "temperature": 0, "messages": [{"role": "user", "content": "the same question"}]}
    fresh = client.chat.completions.with_raw_response.create(**ask)
    hit = client.chat.completions.with_raw_response.create(**ask)
    assert fresh.headers["x-aibroker-cache"] == "miss" and hit.headers["x-aibroker-cache"] == "hit"
    rows = stored(broker.db, [org["organization_id"]])
    fresh_row = next(r for r in rows if not r.cached)
    hit_row = next(r for r in rows if r.cached)
    assert fresh_row.billed_cost_micros > 0 and hit_row.billed_cost_micros == 0
    assert hit_row.cache_saved_micros == fresh_row.billed_cost_micros
    report = _get(broker, org["api_key"])
    assert report["totals"]["cache_hits"] == 1
    assert report["totals"]["cache_savings_micros"] == fresh_row.billed_cost_micros
    platform = _get(broker, ADMIN_TOKEN)
    assert platform["totals"]["cache_savings_micros"] >= fresh_row.billed_cost_micros


def test_owner_sets_the_time_zone(broker):
    from tests.support.accounts import bearer, signup

    owner = signup(broker, "tz-owner@example.com")
    org_id = owner["organization"]["id"] if "organization" in owner else owner["organization_id"]
    with broker.client() as http:
        bad = http.patch(f"/api/organizations/{org_id}", json={"timezone": "Mars/Olympus"}, headers=bearer(owner["access_token"]))
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_timezone"
        ok = http.patch(f"/api/organizations/{org_id}", json={"timezone": "America/Sao_Paulo"}, headers=bearer(owner["access_token"]))
        assert ok.status_code == 200 and ok.json()["timezone"] == "America/Sao_Paulo"


def test_broker_statistics_for_the_platform_key_span_organizations(broker, workload):
    everything = stored(broker.db)
    with broker.client(ADMIN_TOKEN) as admin:
        platform = admin.get("/api/ai/broker")
        one = admin.get("/api/ai/broker", headers={"x-organization-id": workload["utc"]["organization_id"]})
    assert platform.status_code == 200, platform.text
    assert platform.json()["organizationId"] is None
    assert platform.json()["totalRequests"] == len(everything)
    assert one.json()["totalRequests"] == len(stored(broker.db, [workload["utc"]["organization_id"]]))
    with broker.client(workload["ny"]["api_key"]) as tenant:
        assert tenant.get("/api/ai/broker").json()["organizationId"] == workload["ny"]["organization_id"]


def test_rebuild_from_the_records_reproduces_the_rollups(broker, workload):
    from aibroker.ai.rollup_cubes import CUBES
    from aibroker.ai.rollup_rebuild import cube_sums, rebuild_rollups

    def snapshot():
        with broker.db.connect() as conn:
            return {cube.table: cube_sums(conn, cube.table) for cube in CUBES}

    before = snapshot()
    with broker.db.begin() as conn:
        assert rebuild_rollups(conn) == len(stored(broker.db))
    assert snapshot() == before and all(before.values())


def test_a_super_admin_sees_the_platform_and_an_owner_only_their_organization(broker, workload, database_url):
    import os
    import subprocess
    import sys

    from tests.support.accounts import bearer, signup

    root = signup(broker, "root@platform.example", organization_name="Platform Co")
    owner = signup(broker, "owner@tenant.example", organization_name="Tenant Co")
    env = {**os.environ, "AIBROKER_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "aibroker.cli", "user", "promote", "root@platform.example"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    params = {"from": "2026-10-25", "to": "2026-12-05"}
    with broker.client() as http:
        platform = http.get("/api/ai/analytics", params=params, headers=bearer(root["access_token"])).json()
        mine = http.get("/api/ai/analytics", params=params, headers=bearer(owner["access_token"])).json()
        other = http.get("/api/ai/analytics", headers=bearer(owner["access_token"]),
                         params={**params, "organization_id": workload["utc"]["organization_id"]})
    assert platform["totals"]["requests"] == sums(stored(broker.db))["requests"] and "platform" in platform
    assert mine["totals"]["requests"] == 0 and "platform" not in mine
    assert other.status_code == 404

"""Daily and monthly limits of the matrix: counted from the usage records, per organization
(and user), in the organization's time zone, across day and month boundaries."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import insert, text

from aibroker.db import Database
from aibroker.kit.ids import new_id
from aibroker.models import UsageRecord
from aibroker.routing.limits import count_usage, resolve_for_request, windows
from aibroker.routing.router import find_runtime

UTC = dt.UTC


def _ask(client, **headers):
    return client.post(
        "/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-aibroker-feature": "resumo", **headers},
    )


def test_windows_follow_the_local_calendar():
    now = dt.datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # still Feb 28 in Bogota (UTC-5)
    utc, bogota = windows(now, "UTC"), windows(now, "America/Bogota")
    assert (utc.day_start, utc.month_start) == (dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 3, 1, tzinfo=UTC))
    assert bogota.day_start == dt.datetime(2026, 2, 28, 5, 0, tzinfo=UTC)
    assert bogota.day_end == dt.datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
    assert bogota.month_start == dt.datetime(2026, 2, 1, 5, 0, tzinfo=UTC)
    assert bogota.month_end == dt.datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
    december = windows(dt.datetime(2026, 12, 31, 23, 0, tzinfo=UTC), None)
    assert december.month_end == dt.datetime(2027, 1, 1, tzinfo=UTC)
    assert windows(now, "Not/AZone") == utc  # an unknown zone falls back to UTC


def test_daily_limit_refuses_the_fourth_request_until_the_next_day(routed, clock):
    clock.set(dt.datetime(2026, 3, 10, 23, 0, tzinfo=UTC))
    org = routed.create_org("Free", plan="free")
    with routed.client(org["api_key"]) as client:
        served = [_ask(client) for _ in range(3)]
        refused = _ask(client)
        assert [r.status_code for r in served] == [200, 200, 200], served[-1].text
        assert served[0].headers["x-aibroker-feature-remaining-day"] == "2"
        assert served[2].headers["x-aibroker-feature-remaining-day"] == "0"
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert (error["type"], error["code"], error["limit"], error["used"]) == ("quota_exceeded", "daily_limit_reached", 3, 3)
        assert error["reset_at"] == "2026-03-11T00:00:00+00:00"
        assert refused.headers["retry-after"] == "3600"
        clock.set(dt.datetime(2026, 3, 11, 0, 0, 1, tzinfo=UTC))  # a new day: 2 more fit the month's 5
        next_day = [_ask(client) for _ in range(2)]
        month_full = _ask(client)
    assert [r.status_code for r in next_day] == [200, 200]
    assert month_full.status_code == 429
    assert month_full.json()["error"]["code"] == "monthly_limit_reached"
    assert month_full.json()["error"]["reset_at"] == "2026-04-01T00:00:00+00:00"
    clock.set(dt.datetime(2026, 4, 1, 0, 0, 5, tzinfo=UTC))
    with routed.client(org["api_key"]) as client:
        assert _ask(client).status_code == 200


def test_limits_count_in_the_organizations_time_zone(routed, clock):
    org = routed.create_org("Bogota", plan="free")
    with routed.db.begin() as conn:
        conn.execute(text("UPDATE organizations SET timezone = 'America/Bogota' WHERE id = :id"), {"id": org["organization_id"]})
    clock.set(dt.datetime(2026, 3, 10, 4, 30, tzinfo=UTC))  # 23:30 on March 9 in Bogota
    with routed.client(org["api_key"]) as client:
        assert [_ask(client).status_code for _ in range(3)] == [200, 200, 200]
        refused = _ask(client)
        assert refused.status_code == 429
        assert refused.json()["error"]["reset_at"] == "2026-03-10T05:00:00+00:00"
        assert refused.headers["retry-after"] == "1800"
        clock.set(dt.datetime(2026, 3, 10, 5, 0, 1, tzinfo=UTC))  # midnight in Bogota, same UTC day
        assert _ask(client).status_code == 200


def test_failed_requests_do_not_count_and_other_organizations_are_apart(routed, clock):
    a = routed.create_org("A", plan="free")
    b = routed.create_org("B", plan="free")
    with routed.client(a["api_key"]) as client_a, routed.client(b["api_key"]) as client_b:
        assert [_ask(client_a).status_code for _ in range(3)] == [200] * 3
        assert _ask(client_a).status_code == 429
        assert _ask(client_b).status_code == 200  # B's count is its own


def test_users_have_their_own_count(routed, clock):
    org = routed.create_org("Users", plan="free")
    with routed.client(org["api_key"]) as client:
        def ask(user):
            return client.post(
                "/v1/chat/completions", headers={"x-aibroker-feature": "resumo"},
                json={"model": "auto", "user": user, "messages": [{"role": "user", "content": "hi"}]},
            )
        assert [ask("ana").status_code for _ in range(3)] == [200] * 3
        assert ask("ana").status_code == 429
        assert ask("bia").status_code == 200


def test_resolve_for_request_counts_usage_records_across_boundaries(routed, database_url):
    """The seed's resolveAIForRequest against rows placed either side of the boundaries."""
    org = routed.create_org("Rows", plan="free")
    org_id = org["organization_id"]
    base = {"organization_id": org_id, "endpoint": "chat", "provider": "mock", "model": "mock/mock-chat",
            "input_tokens": 1, "output_tokens": 1, "cached_tokens": 0, "provider_cost_micros": 0, "billed_cost_micros": 0,
            "margin_bps": 0, "latency_ms": 0, "upstream_latency_ms": 0, "attempt": 1, "streamed": False, "cached": False,
            "byok": False, "user_id": None, "feature": "resumo"}
    stamps = [
        (dt.datetime(2026, 5, 31, 23, 59, 59), "success"),  # last month
        (dt.datetime(2026, 6, 1, 0, 0, 0), "success"),  # this month, an earlier day
        (dt.datetime(2026, 6, 15, 0, 0, 0), "success"),  # today, first second
        (dt.datetime(2026, 6, 15, 9, 0, 0), "error"),  # failures never count
        (dt.datetime(2026, 6, 15, 10, 0, 0), "success"),
    ]
    with routed.db.begin() as conn:
        for created, status in stamps:
            conn.execute(insert(UsageRecord.__table__).values(
                **base, id=new_id("use"), request_id=new_id("req"), status=status, created_at=created.replace(tzinfo=UTC),
            ))
    snapshot = find_runtime(routed.services).snapshot
    now = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

    async def decide(**kw):
        db = Database(database_url)
        try:
            async with db.sessions() as session:
                counts = await count_usage(session, organization_id=org_id, feature="resumo", user_id=None, win=windows(now, kw.get("timezone")))
                decision = await resolve_for_request(session, snapshot, user=None, feature="resumo", plan="free", profile="default",
                                                     organization_id=org_id, now=now, **kw)
            return counts, decision
        finally:
            await db.dispose()

    counts, decision = asyncio.run(decide(timezone="UTC"))
    assert (counts.today, counts.this_month) == (2, 3)
    assert decision.allowed and decision.provider.model == "mock/mock-chat"
    # In Tokyo (UTC+9) "today" began at 15:00 UTC on the 14th and the month at 15:00 UTC on May 31.
    counts, _ = asyncio.run(decide(timezone="Asia/Tokyo"))
    assert (counts.today, counts.this_month) == (2, 4)


@pytest.mark.parametrize("plan, expected", [("free", (3, 5)), ("professional", (None, None))])
def test_limits_come_from_the_plan_row(routed, plan, expected):
    with routed.admin() as admin:
        answer = admin.post("/api/admin/routing/resolve", json={"plan": plan, "feature": "resumo", "profile": "default"}).json()
    first = answer["candidates"][0]
    assert (first["daily_limit"], first["monthly_limit"]) == expected

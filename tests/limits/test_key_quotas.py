"""Per-user tokens per minute, and an API key's own daily / monthly quotas, through a real
broker on each limit backend: 429s, resets on a moved clock, quota events, GET /api/ai/quota,
and counters that survive a restart."""

from __future__ import annotations

import calendar
import datetime as dt
import math

from tests.limits.test_rate_limits import CHAT, _events, _key, _plan, _tokens_per_call
from tests.support.broker import BrokerServer


def _to_noon(movable_clock, *, days: int = 0, months: int = 0) -> dt.datetime:
    """Move the clock to 12:00 UTC, `days` / `months` ahead: far from any day or month boundary."""
    now = movable_clock.now()
    year, month = divmod(now.month - 1 + months, 12)
    target = now.replace(year=now.year + year, month=month + 1, day=1 if months else now.day, hour=12, minute=0,
                         second=0, microsecond=0) + dt.timedelta(days=days)
    movable_clock.advance((target - now).total_seconds())
    return target


def _post(client, **extra) -> int:
    return client.post("/v1/chat/completions", json={**CHAT, **extra}).status_code


def test_user_tokens_per_minute(broker, upstream, movable_clock):
    per_call = _tokens_per_call(broker)
    _plan(broker, "usertok", user_tokens_per_minute=per_call + 1)  # the 2nd call is admitted (under), then over
    org = broker.create_org("User Tokens", plan="usertok")
    with broker.client(org["api_key"]) as client:
        assert [_post(client, user="ana"), _post(client, user="ana")] == [200, 200]
        refused = client.post("/v1/chat/completions", json={**CHAT, "user": "ana"})
        assert _post(client, user="bob") == 200  # each end user has their own budget
        state = client.get("/api/ai/quota", params={"user": "ana"}).json()
        movable_clock.advance(61)
        assert _post(client, user="ana") == 200  # the next minute
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["scope"], error["metric"], error["period"]) == ("rate_limit_exceeded", "user", "tokens", "minute")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-tokens"] == "0"
    [user_tpm] = [r for r in state["rate_limits"] if r["scope"] == "user" and r["metric"] == "tokens"]
    assert (user_tpm["limit"], user_tpm["used"]) == (per_call + 1, 2 * per_call)


def test_key_daily_request_quota_resets_next_day(broker, upstream, movable_clock):
    today = _to_noon(movable_clock, days=1)
    org = broker.create_org("Daily Key", plan="unlimited")
    key = _key(broker, org["api_key"], daily_request_quota=2)
    with broker.client(key) as client:
        assert [_post(client), _post(client)] == [200, 200]
        refused = client.post("/v1/chat/completions", json=CHAT)
        with broker.client(org["api_key"]) as other:
            assert _post(other) == 200  # the organization's other key is not held by this key's quota
        midnight = today.replace(hour=0) + dt.timedelta(days=1)
        expected_retry = math.ceil((midnight - movable_clock.now()).total_seconds())
        _to_noon(movable_clock, days=1)
        assert [_post(client), _post(client), _post(client)] == [200, 200, 429]
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["scope"], error["period"], error["code"]) == ("quota_exceeded", "key", "day", "day_requests_quota")
    assert error["resets_at"] == midnight.isoformat()
    assert abs(int(refused.headers["retry-after"]) - expected_retry) <= 2
    # The 2nd request of each day crossed 80% and 100%: warnings once per day, about the key.
    events = _events(broker, org["organization_id"])
    assert sorted((e.payload["threshold_percent"], e.payload["window"]) for e in events) == [
        (80, f"day{today:%Y%m%d}"), (80, f"day{midnight:%Y%m%d}"), (100, f"day{today:%Y%m%d}"), (100, f"day{midnight:%Y%m%d}")
    ]
    assert {(e.payload["scope"], e.payload["period"], e.payload["limit"]) for e in events} == {("key", "day", 2)}


def test_key_monthly_request_quota(broker, upstream, movable_clock):
    mid_month = _to_noon(movable_clock, days=14, months=1)  # the 15th of next month
    org = broker.create_org("Monthly Key", plan="unlimited")
    key = _key(broker, org["api_key"], monthly_request_quota=3)
    with broker.client(key) as client:
        assert [_post(client) for _ in range(3)] == [200, 200, 200]
        movable_clock.advance(86_400)  # another day of the same month: still spent
        refused = client.post("/v1/chat/completions", json=CHAT)
        next_month = mid_month.replace(day=1, hour=0) + dt.timedelta(days=calendar.monthrange(mid_month.year, mid_month.month)[1])
        movable_clock.advance((next_month - movable_clock.now()).total_seconds() + 60)
        assert _post(client) == 200
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["scope"], error["period"], error["limit"]) == ("quota_exceeded", "key", "month", 3)
    assert error["resets_at"] == next_month.isoformat()
    assert "set on the key" in error["message"]


def test_key_daily_token_quota(broker, upstream, movable_clock):
    _to_noon(movable_clock, days=1)
    per_call = _tokens_per_call(broker)
    org = broker.create_org("Token Key", plan="unlimited")
    key = _key(broker, org["api_key"], daily_token_quota=per_call + 1)
    with broker.client(key) as client:
        codes = [_post(client) for _ in range(3)]
        refused = client.post("/v1/chat/completions", json=CHAT)
    assert codes == [200, 200, 429]
    error = refused.json()["error"]
    assert (error["type"], error["scope"], error["metric"], error["period"]) == ("quota_exceeded", "key", "tokens", "day")
    assert int(refused.headers["retry-after"]) > 3600  # to midnight, not a minute


def test_quota_endpoint_shows_the_key_quotas(broker, upstream, movable_clock):
    _to_noon(movable_clock, days=1)
    per_call = _tokens_per_call(broker)
    org = broker.create_org("Report", plan="unlimited")
    key = _key(broker, org["api_key"], daily_request_quota=5, monthly_request_quota=50, daily_token_quota=10 * per_call,
               monthly_token_quota=100 * per_call)
    with broker.client(key) as client:
        assert _post(client) == 200
        state = client.get("/api/ai/quota").json()
    assert state["api_key_id"] and state["plan"]["slug"] == "unlimited"
    quotas = {(q["scope"], q["metric"], q["period"]): (q["limit"], q["used"], q["remaining"], q["percent_used"]) for q in state["quotas"]}
    assert quotas == {
        ("key", "requests", "day"): (5, 1, 4, 20.0),
        ("key", "requests", "month"): (50, 1, 49, 2.0),
        ("key", "tokens", "day"): (10 * per_call, per_call, 9 * per_call, 10.0),
        ("key", "tokens", "month"): (100 * per_call, per_call, 99 * per_call, 1.0),
    }


def test_key_limits_are_validated_and_can_be_changed(broker, upstream, movable_clock):
    _to_noon(movable_clock, days=1)
    org = broker.create_org("Patch", plan="unlimited")
    with broker.client(org["api_key"]) as admin_key:
        bad = admin_key.post("/api/keys", json={"name": "x", "daily_request_quota": 0})
        created = admin_key.post("/api/keys", json={"name": "later"}).json()
        patched = admin_key.patch(f"/api/keys/{created['id']}", json={"daily_request_quota": 1})
        with broker.client(created["key"]) as client:
            assert [_post(client), _post(client)] == [200, 429]
            removed = admin_key.patch(f"/api/keys/{created['id']}", json={"daily_request_quota": None})
            assert _post(client) == 200
        listed = {k["id"]: k for k in admin_key.get("/api/keys").json()}
        unknown = admin_key.patch("/api/keys/key_nope", json={"rpm": 5})
        null_name = admin_key.patch(f"/api/keys/{created['id']}", json={"name": None})
    assert bad.status_code == 422 and "daily_request_quota" in bad.text
    assert patched.status_code == 200 and patched.json()["limits"]["daily_request_quota"] == 1
    assert removed.json()["limits"]["daily_request_quota"] is None
    assert listed[created["id"]]["limits"] == {
        "rpm": None, "rph": None, "tpm": None, "monthly_token_quota": None, "daily_token_quota": None,
        "monthly_request_quota": None, "daily_request_quota": None,
    }
    assert unknown.status_code == 404 and null_name.status_code == 400


def test_key_quota_counters_survive_a_restart(broker, upstream, movable_clock):
    """In memory, quota counters are re-seeded from usage_records at startup; on Redis they persist."""
    _to_noon(movable_clock, days=1)
    org = broker.create_org("Restart", plan="unlimited")
    key = _key(broker, org["api_key"], daily_request_quota=2)
    with broker.client(key) as client:
        assert [_post(client), _post(client)] == [200, 200]
    broker.flush()
    broker.stop()
    again = BrokerServer(broker.database_url)
    again.start()
    try:
        with again.client(key) as client:
            refused = client.post("/v1/chat/completions", json=CHAT)
    finally:
        again.stop()
    assert refused.status_code == 429 and refused.json()["error"]["scope"] == "key"

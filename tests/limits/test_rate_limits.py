"""Rate limits and quotas through a real broker: 429s with Retry-After and OpenAI's
x-ratelimit-* headers, window rollover on a moved clock, quota events once per threshold."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aibroker.models import Event, UsageRecord

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "count my words please"}]}


def _plan(broker, slug: str, **limits) -> None:
    with broker.admin() as admin:
        response = admin.post("/api/admin/plans", json={"slug": slug, "name": slug.upper(), **limits})
    assert response.status_code == 201, response.text


def _key(broker, org_key: str, **limits) -> str:
    with broker.client(org_key) as client:
        response = client.post("/api/keys", json={"name": "limited", **limits})
    assert response.status_code == 201, response.text
    return response.json()["key"]


def _events(broker, org_id: str) -> list[Event]:
    with broker.db.connect() as conn:
        rows = conn.execute(select(Event).where(Event.organization_id == org_id, Event.type.like("quota.%")))
        return sorted(rows, key=lambda e: e.payload["threshold_percent"])


def test_key_rpm_refuses_with_retry_after_and_headers(broker, upstream):
    org = broker.create_org("Limited", plan="unlimited")
    key = _key(broker, org["api_key"], rpm=3)
    with broker.client(key) as client:
        ok = [client.post("/v1/chat/completions", json=CHAT) for _ in range(3)]
        refused = client.post("/v1/chat/completions", json=CHAT)
    assert [r.status_code for r in ok] == [200, 200, 200]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in ok] == ["2", "1", "0"]
    assert all(r.headers["x-ratelimit-limit-requests"] == "3" and r.headers["x-ratelimit-reset-requests"].endswith("s") for r in ok)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-aibroker-cache"] == "bypass"
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_exceeded" and error["scope"] == "key" and error["period"] == "minute"
    assert len(upstream.requests) == 3
    broker.flush()
    statuses = sorted(r.status for r in broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"]))
    assert statuses == ["refused", "success", "success", "success"]  # the refusal is recorded, at no cost
    # The organization's other key is not limited by this key's limit.
    with broker.client(org["api_key"]) as client:
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_window_rollover_on_a_moved_clock(broker, upstream, movable_clock):
    _plan(broker, "tiny", requests_per_minute=2)
    org = broker.create_org("Tiny", plan="tiny")
    with broker.client(org["api_key"]) as client:
        assert [client.post("/v1/chat/completions", json=CHAT).status_code for _ in range(3)] == [200, 200, 429]
        movable_clock.advance(61)
        assert [client.post("/v1/chat/completions", json=CHAT).status_code for _ in range(3)] == [200, 200, 429]


def test_free_plan_allows_ten_requests_per_hour(broker, upstream):
    org = broker.create_org("Free Co")  # FREE when no plan is named
    with broker.client(org["api_key"]) as client:
        codes = [client.post("/v1/chat/completions", json=CHAT).status_code for _ in range(11)]
        refused = client.post("/v1/chat/completions", json=CHAT)
    assert codes == [200] * 10 + [429]
    assert refused.json()["error"]["period"] == "hour"
    assert 60 < int(refused.headers["retry-after"]) <= 3600


def test_tokens_per_minute_admits_under_then_counts_actual(broker, upstream):
    per_call = _tokens_per_call(broker)
    _plan(broker, "tok", tokens_per_minute=per_call + 1)  # the 2nd call is admitted (under), then over
    org = broker.create_org("Tok", plan="tok")
    with broker.client(org["api_key"]) as client:
        first = client.post("/v1/chat/completions", json=CHAT)
        second = client.post("/v1/chat/completions", json=CHAT)
        third = client.post("/v1/chat/completions", json=CHAT)
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert first.headers["x-ratelimit-remaining-tokens"] == str(per_call + 1)
    assert second.headers["x-ratelimit-remaining-tokens"] == "1"
    assert third.json()["error"]["metric"] == "tokens"


def _tokens_per_call(broker) -> int:
    probe = broker.create_org("Probe", plan="unlimited")
    with broker.client(probe["api_key"]) as client:
        return client.post("/v1/chat/completions", json=CHAT).json()["usage"]["total_tokens"]


def test_monthly_token_quota_warns_at_80_and_100_once(broker, upstream):
    per_call = _tokens_per_call(broker)
    quota = int(3.5 * per_call)  # call 3 ends at 86% (warning), call 4 at 114% (exceeded)
    _plan(broker, "quota", monthly_token_quota=quota)
    org = broker.create_org("Quota Co", plan="quota")
    with broker.client(org["api_key"]) as client:
        codes = [client.post("/v1/chat/completions", json=CHAT).status_code for _ in range(5)]
        state = client.get("/api/ai/quota").json()
    assert codes == [200, 200, 200, 200, 429]
    events = _events(broker, org["organization_id"])
    assert [(e.type, e.payload["threshold_percent"]) for e in events] == [("quota.warning", 80), ("quota.exceeded", 100)]
    assert events[0].payload["used"] == 3 * per_call and events[1].payload["used"] == 4 * per_call
    [monthly] = [q for q in state["quotas"] if q["metric"] == "tokens" and q["period"] == "month"]
    assert (monthly["limit"], monthly["used"], monthly["remaining"]) == (quota, 4 * per_call, 0)
    assert state["plan"]["slug"] == "quota"


def test_request_quota_refusal_is_quota_exceeded(broker, upstream):
    _plan(broker, "daily", daily_request_quota=2)
    org = broker.create_org("Daily", plan="daily")
    with broker.client(org["api_key"]) as client:
        codes = [client.post("/v1/chat/completions", json=CHAT).status_code for _ in range(2)]
        refused = client.post("/v1/chat/completions", json=CHAT)
    assert codes == [200, 200] and refused.status_code == 429
    assert refused.json()["error"]["type"] == "quota_exceeded"
    assert "resets_at" in refused.json()["error"] and int(refused.headers["retry-after"]) >= 1
    # The 2nd request crosses 80% and 100% at once: both events, each once.
    assert [e.payload["threshold_percent"] for e in _events(broker, org["organization_id"])] == [80, 100]


def test_per_user_limit(broker, upstream):
    _plan(broker, "peruser", user_requests_per_minute=1)
    org = broker.create_org("Users", plan="peruser")
    with broker.client(org["api_key"]) as client:
        assert client.post("/v1/chat/completions", json={**CHAT, "user": "ana"}).status_code == 200
        refused = client.post("/v1/chat/completions", json={**CHAT, "user": "ana"})
        assert client.post("/v1/chat/completions", json={**CHAT, "user": "bob"}).status_code == 200
    assert refused.status_code == 429 and refused.json()["error"]["scope"] == "user"


def test_allowed_models(broker, upstream):
    _plan(broker, "mini-only", allowed_models=["gpt-4o-mini"])
    org = broker.create_org("Mini", plan="mini-only")
    with broker.client(org["api_key"]) as client:
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
        refused = client.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"


@pytest.mark.parametrize("field", ["rpm"])
def test_unlimited_plan_has_no_limits(broker, upstream, field):
    org = broker.create_org("Internal", plan="unlimited")
    with broker.client(org["api_key"]) as client:
        codes = {client.post("/v1/chat/completions", json=CHAT).status_code for _ in range(15)}
        state = client.get("/api/ai/quota").json()
    assert codes == {200}
    assert state["quotas"] == [] and state["rate_limits"] == []

"""A/B splits through HTTP: write-time checks, the observed proportions over many end users,
stickiness, the arm on each usage record, the per-arm report, feedback, tenant scoping."""

from __future__ import annotations

from collections import Counter

from aibroker.ai.splits_book import BUCKETS, bucket, bucket_index
from tests.ai.conftest import assert_ledger_clean
from tests.support.accounts import bearer
from tests.support.usage import usage_rows

USERS = 240
ARMS = [{"model": "mock-chat", "weight": 70, "name": "control"}, {"model": "mock/mock-vote-a", "weight": 30}]


def _ask(http, user: str, **extra):
    body = {"model": "auto", "user": user, "messages": [{"role": "user", "content": "summarize this"}], **extra}
    response = http.post("/v1/chat/completions", json=body, headers={"x-aibroker-feature": "summarize"})
    assert response.status_code == 200, response.text
    return response


def test_the_split_routes_by_weight_sticky_per_user_and_reports_per_arm(broker):
    org = broker.create_org("Experiments", credit="50", plan="unlimited")
    with broker.client(org["api_key"]) as http:
        made = http.post("/api/ai/splits", json={"feature": "summarize", "arms": ARMS, "name": "cheap vs fixed"})
        assert made.status_code == 201, made.text
        split = made.json()
        assert [a["name"] for a in split["arms"]] == ["control", "mock/mock-vote-a"]
        served: dict[str, str] = {}
        request_of: dict[str, str] = {}
        for i in range(USERS):
            response = _ask(http, f"end-user-{i}")
            served[f"end-user-{i}"] = response.headers["x-aibroker-model"]
            request_of[f"end-user-{i}"] = response.headers["x-request-id"]
        again = [_ask(http, f"end-user-{i}").headers["x-aibroker-model"] for i in range(20)]
        explicit = _ask(http, "end-user-0", model="mock/mock-text")
        counts = Counter(served.values())
        # Feedback on a few requests of each arm.
        scored = {"control": [], "mock/mock-vote-a": []}
        for user, model in list(served.items())[:40]:
            arm = "control" if model == "mock/mock-chat" else "mock/mock-vote-a"
            score = 1.0 if arm == "control" else -1.0
            assert http.post("/api/ai/feedback", json={"request_id": request_of[user], "score": score}).status_code == 200
            scored[arm].append(score)
        first = request_of["end-user-0"]
        assert http.post("/api/ai/feedback", json={"request_id": first, "score": 0.5}).json()["score"] == 0.5  # replaces
        report = http.get(f"/api/ai/splits/{split['id']}/report").json()
    share = counts["mock/mock-chat"] / USERS
    assert abs(share - 0.70) < 0.08, counts
    assert counts["mock/mock-chat"] + counts["mock/mock-vote-a"] == USERS
    assert again == [served[f"end-user-{i}"] for i in range(20)]  # sticky
    assert explicit.headers["x-aibroker-model"] == "mock/mock-text"  # an explicit model wins
    # The hash is the documented one: org + feature + user over 10,000 buckets.
    expected = Counter(
        "mock/mock-chat" if bucket_index([70, 30], bucket(org["organization_id"], "summarize", f"end-user-{i}")) == 0 else "mock/mock-vote-a"
        for i in range(USERS))
    assert expected == counts and BUCKETS == 10_000
    rows = [r for r in usage_rows(broker, org["organization_id"]) if r.status == "success"]
    split_rows = [r for r in rows if r.ab_split_id == split["id"]]
    assert len(split_rows) == USERS + 20
    assert all(r.ab_arm == ("control" if r.model == "mock/mock-chat" else "mock/mock-vote-a") for r in split_rows)
    assert next(r for r in rows if r.request_id == explicit.headers["x-request-id"]).ab_split_id is None
    arms = {a["name"]: a for a in report["arms"]}
    assert arms["control"]["requests"] == sum(1 for r in split_rows if r.ab_arm == "control")
    assert arms["control"]["cost_micros"] == sum(r.billed_cost_micros for r in split_rows if r.ab_arm == "control")
    assert arms["mock/mock-vote-a"]["errors"] == 0 and arms["control"]["latency_ms_avg"] is not None
    first_arm = "control" if served["end-user-0"] == "mock/mock-chat" else "mock/mock-vote-a"
    scored[first_arm][0] = 0.5
    for name, scores in scored.items():
        assert arms[name]["feedback"]["count"] == len(scores)
        assert abs(arms[name]["feedback"]["score_avg"] - sum(scores) / len(scores)) < 1e-4  # rounded to 4 places
    assert_ledger_clean(broker)


def test_a_split_is_checked_at_write_time(broker, org):
    with broker.client(org["api_key"]) as http:
        for arms, code in (
            ([{"model": "mock-chat", "weight": 60}, {"model": "mock-text", "weight": 39}], "split_weights_invalid"),
            ([{"model": "mock-chat", "weight": 50}, {"model": "no-such-model", "weight": 50}], "split_model_unknown"),
            ([{"model": "mock-chat", "weight": 50}, {"model": "mock-embed", "weight": 50}], "split_model_unknown"),
            ([{"model": "mock-chat", "weight": 50}, {"model": "mock/mock-chat", "weight": 50}], "split_arms_duplicate"),
        ):
            response = http.post("/api/ai/splits", json={"feature": "f", "arms": arms})
            assert response.status_code == 400 and response.json()["error"]["code"] == code, response.text
        assert http.post("/api/ai/splits", json={"feature": "f", "arms": [{"model": "mock-chat", "weight": 100}]}).status_code == 422
        good = [{"model": "mock-chat", "weight": 50}, {"model": "mock-text", "weight": 50}]
        made = http.post("/api/ai/splits", json={"feature": "f", "arms": good})
        assert made.status_code == 201
        again = http.post("/api/ai/splits", json={"feature": "f", "arms": good})
        assert again.status_code == 409 and again.json()["error"]["code"] == "split_exists"
        bad_update = http.put(f"/api/ai/splits/{made.json()['id']}", json={"arms": [{"model": "mock-chat", "weight": 1}, {"model": "mock-text", "weight": 1}]})
        assert bad_update.status_code == 400
        paused = http.put(f"/api/ai/splits/{made.json()['id']}", json={"active": False})
        assert paused.status_code == 200 and paused.json()["active"] is False
        response = http.post("/v1/chat/completions", json={"model": "auto", "user": "u", "messages": [{"role": "user", "content": "x"}]},
                             headers={"x-aibroker-feature": "f"})
        assert response.status_code == 200 and response.headers["x-aibroker-model"] not in ("mock/mock-text",)  # paused: the default serves
        assert http.delete(f"/api/ai/splits/{made.json()['id']}").status_code == 204
        assert http.get(f"/api/ai/splits/{made.json()['id']}").status_code == 404


def test_splits_and_feedback_are_per_organization_and_role(broker, org, other_org, team):
    arms = [{"model": "mock-chat", "weight": 50}, {"model": "mock-text", "weight": 50}]
    with broker.client(org["api_key"]) as http:
        split = http.post("/api/ai/splits", json={"feature": "g", "arms": arms}).json()
        answered = http.post("/v1/chat/completions", json={"model": "mock-chat", "messages": [{"role": "user", "content": "x"}]})
        request_id = answered.headers["x-request-id"]
    with broker.client(other_org["api_key"]) as http:
        for method, path, body in (("GET", "", None), ("PUT", "", {"active": False}), ("DELETE", "", None), ("GET", "/report", None)):
            assert http.request(method, f"/api/ai/splits/{split['id']}{path}", json=body).status_code == 404
        assert http.get("/api/ai/splits").json()["data"] == []
        stolen = http.post("/api/ai/feedback", json={"request_id": request_id, "score": -1})
        assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "request_not_found"
        assert http.post("/api/ai/feedback", json={"request_id": "req_unknown", "score": 1}).status_code == 404
        assert http.post("/api/ai/feedback", json={"request_id": request_id, "score": 3}).status_code == 422
    with broker.client() as http:
        member = bearer(team["member"])
        assert http.post("/api/ai/splits", json={"feature": "g", "arms": arms}, headers=member).status_code == 403
        assert http.get("/api/ai/splits", headers=member).status_code == 403  # VIEW_USAGE
        mine = http.post("/v1/chat/completions", json={"model": "mock-chat", "messages": [{"role": "user", "content": "x"}]}, headers=member)
        assert http.post("/api/ai/feedback", json={"request_id": mine.headers["x-request-id"], "score": 1}, headers=member).status_code == 200

"""Collaborative voting: every voting provider answers (mock models that disagree), then
majority, weighted vote or a synthesizing model; each call billed under one request id."""

from __future__ import annotations

from aibroker.models import UsageRecord

QUESTION = {"role": "user", "content": "Is this review positive or negative?"}


def _vote(client, **extra):
    return client.post(
        "/v1/chat/completions", headers={"x-aibroker-feature": "sentimento"},
        json={"model": "auto", "messages": [QUESTION], "aibroker": {"include_votes": True}, **extra},
    )


def _set_strategy(broker, strategy):
    with broker.admin() as admin:
        [feature] = [f for f in admin.get("/api/admin/routing/features").json()["data"] if f["slug"] == "sentimento"]
        response = admin.patch(f"/api/admin/routing/features/{feature['id']}", json={"consensus_strategy": strategy})
    assert response.status_code == 200, response.text


def test_majority_over_normalised_answers_with_votes_billed_under_one_request(routed):
    org = routed.create_org("Pro", plan="professional")
    with routed.client(org["api_key"]) as client:
        response = _vote(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Positive."  # "Positive." + "positive" beat "Negative!"
    extension = body["aibroker"]
    assert (extension["mode"], extension["strategy"]) == ("consensus", "majority")
    assert [(v["model"], v["answer"], v["weight"]) for v in extension["votes"]] == [
        ("mock/mock-vote-a", "Positive.", 1.0), ("mock/mock-vote-b", "positive", 1.0), ("mock/mock-vote-c", "Negative!", 3.0),
    ]
    assert extension["winner"]["model"] == "mock/mock-vote-a"
    routed.flush()
    rows = routed.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    assert len(rows) == 3 and {r.request_id for r in rows} == {response.headers["x-request-id"]}
    assert all(r.status == "success" and r.billed_cost_micros > 0 for r in rows)
    assert sum(r.billed_cost_micros for r in rows) == int(response.headers["x-aibroker-cost-micros"])
    assert sum(v["cost_micros"] for v in extension["votes"]) == int(response.headers["x-aibroker-cost-micros"])


def test_weighted_vote_follows_provider_weight(routed):
    _set_strategy(routed, "weighted")
    org = routed.create_org("Pro", plan="professional")
    with routed.client(org["api_key"]) as client:
        response = _vote(client)
        without_votes = client.post(
            "/v1/chat/completions", headers={"x-aibroker-feature": "sentimento"},
            json={"model": "auto", "messages": [QUESTION]},
        )
    assert response.json()["choices"][0]["message"]["content"] == "Negative!"  # weight 3 beats 1 + 1
    assert response.json()["aibroker"]["strategy"] == "weighted"
    assert "aibroker" not in without_votes.json()


def test_synthesize_asks_the_consensus_model_and_bills_it(routed):
    _set_strategy(routed, "synthesize")
    org = routed.create_org("Pro", plan="professional")
    with routed.client(org["api_key"]) as client:
        response = _vote(client)
    assert response.status_code == 200, response.text
    body = response.json()
    content = body["choices"][0]["message"]["content"]
    # mock-chat echoes its prompt: it was shown the request and every candidate answer
    assert content.startswith("Mock reply to: Request: Is this review") and "Negative!" in content
    assert body["model"] == "mock/mock-chat" and body["aibroker"]["strategy"] == "synthesize"
    routed.flush()
    rows = routed.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    assert sorted(r.model for r in rows) == ["mock/mock-chat", "mock/mock-vote-a", "mock/mock-vote-b", "mock/mock-vote-c"]
    assert {r.request_id for r in rows} == {response.headers["x-request-id"]}


def test_streaming_a_consensus_feature_is_refused(routed):
    org = routed.create_org("Pro", plan="professional")
    with routed.client(org["api_key"]) as client:
        response = _vote(client, stream=True)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "consensus_stream_unsupported"


def test_a_consensus_request_counts_once_against_the_limits(routed, clock):
    org = routed.create_org("Free", plan="free")  # free: two voters, 2 per day
    with routed.client(org["api_key"]) as client:
        first, second, third = _vote(client), _vote(client), _vote(client)
    assert first.status_code == second.status_code == 200, first.text
    assert len(first.json()["aibroker"]["votes"]) == 2
    assert third.status_code == 429 and third.json()["error"]["code"] == "daily_limit_reached"

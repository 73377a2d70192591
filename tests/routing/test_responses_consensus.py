"""/v1/responses on a consensus feature: the vote runs as on chat; the winner is rendered as a Response."""

from __future__ import annotations

from aibroker.models import StoredResponse, UsageRecord

BODY = {"model": "auto", "input": "Is this review positive or negative?", "aibroker": {"include_votes": True}}


def test_a_consensus_feature_votes_on_responses_and_bills_every_vote(routed):
    org = routed.create_org("Pro", plan="professional")
    with routed.client(org["api_key"]) as client:
        response = client.post("/v1/responses", headers={"x-aibroker-feature": "sentimento"}, json=BODY)
        streamed = client.post("/v1/responses", headers={"x-aibroker-feature": "sentimento"}, json={**BODY, "stream": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "response" and body["output"][0]["content"][0]["text"] == "Positive."
    assert body["aibroker"]["mode"] == "consensus" and len(body["aibroker"]["votes"]) == 3
    routed.flush()
    rows = routed.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    assert len(rows) == 3 and {r.request_id for r in rows} == {response.headers["x-request-id"]}
    assert sum(r.billed_cost_micros for r in rows) == int(response.headers["x-aibroker-cost-micros"]) > 0
    [stored] = routed.rows(StoredResponse, StoredResponse.id == body["id"])
    assert stored.cost_micros == int(response.headers["x-aibroker-cost-micros"])
    assert streamed.status_code == 400 and streamed.json()["error"]["code"] == "consensus_stream_unsupported"

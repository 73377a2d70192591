"""AI conversations through the HTTP API: turns billed through the gateway, SSE, the history
fitted to the context, generated titles, per-user scoping."""

from __future__ import annotations

import json

from tests.ai.conftest import assert_ledger_clean
from tests.support.accounts import bearer
from tests.support.usage import usage_rows


def _sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_a_conversation_turn_by_turn_is_billed_recorded_and_titled(broker, org):
    with broker.client(org["api_key"]) as http:
        conv = http.post("/api/ai/conversations", json={"model": "mock-chat", "system_prompt": "Be brief."})
        assert conv.status_code == 201, conv.text
        conv_id = conv.json()["id"]
        assert conv.json()["title"] is None and conv.json()["model"] == "mock/mock-chat"
        first = http.post(f"/api/ai/conversations/{conv_id}/messages", json={"content": "Tell me about the weather in Lisbon this spring"})
        assert first.status_code == 200, first.text
        reply = first.json()
        assert reply["role"] == "assistant" and reply["content"].startswith("Mock reply to: Tell me about")
        assert reply["cost_micros"] > 0 and reply["request_id"] == first.headers["x-request-id"]
        assert int(first.headers["x-aibroker-cost-micros"]) == reply["cost_micros"]
        second = http.post(f"/api/ai/conversations/{conv_id}/messages", json={"content": "and in summer?"})
        assert second.status_code == 200
        got = http.get(f"/api/ai/conversations/{conv_id}").json()
    assert got["title"] == "Tell me about the weather in Lisbon this spring"
    assert [m["role"] for m in got["messages"]] == ["user", "assistant", "user", "assistant"]
    assert got["message_count"] == 4 and got["cost_micros"] == reply["cost_micros"] + second.json()["cost_micros"]
    rows = {r.request_id: r for r in usage_rows(broker, org["organization_id"])}
    assert rows[reply["request_id"]].billed_cost_micros == reply["cost_micros"]
    assert rows[reply["request_id"]].feature == "ai_conversation"
    # The second turn was sent the whole history: system, first turn, its answer, the new message.
    assert rows[second.json()["request_id"]].input_tokens > rows[reply["request_id"]].input_tokens
    assert_ledger_clean(broker)


def test_a_streamed_turn_sends_deltas_then_the_stored_message(broker, org):
    with broker.client(org["api_key"]) as http:
        conv_id = http.post("/api/ai/conversations", json={"title": "Streaming"}).json()["id"]
        streamed = http.post(f"/api/ai/conversations/{conv_id}/messages", json={"content": "count to three please", "stream": True})
        assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
        events = _sse(streamed.text)
        got = http.get(f"/api/ai/conversations/{conv_id}").json()
    deltas = "".join(data["content"] for name, data in events if name == "delta")
    name, message = events[-1]
    assert name == "message" and message["content"] == deltas and "count to three" in deltas  # the platform default model (the fake OpenAI)
    assert message["cost_micros"] > 0 and got["title"] == "Streaming"
    assert got["messages"][-1]["content"] == deltas and got["messages"][-1]["request_id"] == message["request_id"]
    row = next(r for r in usage_rows(broker, org["organization_id"]) if r.request_id == message["request_id"])
    assert row.billed_cost_micros == message["cost_micros"] and row.streamed


def test_the_history_is_fitted_to_the_models_context(broker):
    """mock-chat has a 32,768-token window: three turns of ~30,000 bytes (~10,000 estimated tokens
    each) cannot all go; the oldest are dropped, and the newest message always goes."""
    long = "word " * 6000
    org = broker.create_org("Big prompts", credit="10", plan="unlimited")  # no plan cap on prompt length
    with broker.client(org["api_key"]) as http:
        conv_id = http.post("/api/ai/conversations", json={"model": "mock-chat"}).json()["id"]
        ids = []
        for i in range(4):
            turn = http.post(f"/api/ai/conversations/{conv_id}/messages", json={"content": f"turn{i} {long}", "max_tokens": 50})
            assert turn.status_code == 200, turn.text
            ids.append(turn.json()["request_id"])
        too_long = http.post(f"/api/ai/conversations/{conv_id}/messages", json={"content": "x" * 199_000})
        assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "conversation_message_too_long"
    tokens = {r.request_id: r.input_tokens for r in usage_rows(broker, org["organization_id"])}
    # mock counts words: 6,001 per message; the 3rd and 4th turns carry no more than 2 earlier messages.
    assert tokens[ids[1]] > tokens[ids[0]] + 6000
    assert tokens[ids[3]] < 4 * 6001


def test_conversations_are_per_user_and_per_organization(broker, team, org):
    with broker.client() as http:
        owner, member = bearer(team["owner"]), bearer(team["member"])
        conv_id = http.post("/api/ai/conversations", json={}, headers=owner).json()["id"]
        assert http.post(f"/api/ai/conversations/{conv_id}/messages", json={"content": "hello"}, headers=owner).status_code == 200
        assert [c["id"] for c in http.get("/api/ai/conversations", headers=owner).json()["data"]] == [conv_id]
        assert http.get("/api/ai/conversations", headers=member).json()["data"] == []
        for method, path, body in (("GET", "", None), ("PATCH", "", {"title": "mine"}), ("DELETE", "", None),
                                   ("POST", "/messages", {"content": "hi"})):
            for who in (member, bearer(org["api_key"])):
                response = http.request(method, f"/api/ai/conversations/{conv_id}{path}", json=body, headers=who)
                assert response.status_code == 404, (method, path, response.text)
        renamed = http.patch(f"/api/ai/conversations/{conv_id}", json={"title": "Renamed"}, headers=owner)
        assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed"
        assert http.patch(f"/api/ai/conversations/{conv_id}", json={"model": "mock-embed"}, headers=owner).status_code == 400
        assert http.patch(f"/api/ai/conversations/{conv_id}", json={"model": "no-such-model"}, headers=owner).status_code in (400, 404)
        assert http.delete(f"/api/ai/conversations/{conv_id}", headers=owner).status_code == 204
        assert http.get(f"/api/ai/conversations/{conv_id}", headers=owner).status_code == 404


def test_a_turn_the_wallet_cannot_pay_is_refused_and_stores_nothing(broker):
    poor = broker.create_org("Poor", credit="0")
    with broker.client(poor["api_key"]) as http:
        conv_id = http.post("/api/ai/conversations", json={"model": "mock-chat"}).json()["id"]
        refused = http.post(f"/api/ai/conversations/{conv_id}/messages", json={"content": "hello"})
        assert refused.status_code == 402
        assert http.get(f"/api/ai/conversations/{conv_id}").json()["messages"] == []
        assert http.post(f"/api/ai/conversations/{conv_id}/messages", json={"content": ""}).status_code == 422

"""/v1/responses (OpenAI's Responses API) with the official openai SDK against a running
broker on mock-chat: create, stream, parse, tool round trips, storage, refusals, billing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import openai
import pytest
from pydantic import BaseModel

from aibroker.models import LedgerEntry, StoredResponse, Wallet
from tests.support.usage import usage_rows

ROOT = Path(__file__).resolve().parents[2]
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"], "additionalProperties": False}, "strict": True}


def test_create_with_string_input_is_billed_recorded_and_stored(broker, org, client):
    raw = client.responses.with_raw_response.create(model="mock-chat", input="hello there broker",
                                                    instructions="Be brief.", metadata={"ticket": "T-1"})
    response = raw.parse()
    assert response.object == "response" and response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text == "Mock reply to: hello there broker"
    assert response.model == "mock-chat" and response.instructions == "Be brief." and response.metadata == {"ticket": "T-1"}
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    usage = response.usage
    # the mock: system (2 words + 3) + user (3 words + 3) = 11 prompt tokens; 6 reply words
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (11, 6, 17)
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    [row] = usage_rows(broker, org["organization_id"])
    assert (row.status, row.endpoint, row.model) == ("success", "responses", "mock/mock-chat")
    assert (row.input_tokens, row.output_tokens) == (11, 6)
    assert raw.headers["x-aibroker-cost-micros"] == str(row.billed_cost_micros) and row.billed_cost_micros > 0
    assert raw.headers["x-aibroker-balance-micros"] == str(10_000_000 - row.billed_cost_micros)
    [debit] = broker.rows(LedgerEntry, LedgerEntry.usage_record_id == row.id)
    assert debit.amount_micros == -row.billed_cost_micros
    [stored] = broker.rows(StoredResponse, StoredResponse.id == response.id)
    assert stored.organization_id == org["organization_id"] and stored.request_id == raw.headers["x-request-id"]
    assert stored.cost_micros == row.billed_cost_micros and stored.expires_at is not None
    again = client.responses.retrieve(response.id)
    assert again.output_text == response.output_text and again.usage.total_tokens == 17


def test_create_with_items_and_an_image_part(client):
    response = client.responses.create(model="mock-chat", input=[
        {"role": "developer", "content": "You are terse."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "what is in"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
            {"type": "input_text", "text": "this picture"}]},
    ])
    assert response.output_text == "Mock reply to: what is in this picture"
    items = client.responses.input_items.list(response.id, order="asc")
    assert [i.role for i in items.data] == ["developer", "user"]
    assert [p.type for p in items.data[1].content] == ["input_text", "input_image", "input_text"]
    assert all(i.id for i in items.data)


def test_stream_events_in_order_with_usage_and_cost(broker, org, client):
    plain = client.responses.create(model="mock-chat", input="stream these few words")
    with client.responses.stream(model="mock-chat", input="stream these few words") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert len(deltas) > 1 and set(kinds[4:-4]) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(deltas) == final.output_text == plain.output_text
    assert final.usage.output_tokens == plain.usage.output_tokens and final.usage.input_tokens == plain.usage.input_tokens
    rows = usage_rows(broker, org["organization_id"])
    assert [r.streamed for r in rows] == [False, True]
    cost = final.model_extra["aibroker"]
    assert cost["cost_micros"] == rows[1].billed_cost_micros == rows[0].billed_cost_micros > 0
    wallet = broker.rows(Wallet, Wallet.organization_id == org["organization_id"])[0]
    assert cost["balance_micros"] == wallet.balance_micros
    assert client.responses.retrieve(final.id).output_text == final.output_text  # streamed answers are stored too


class Lead(BaseModel):
    name: str
    score: int
    qualified: bool


def test_parse_with_a_pydantic_model(client, broker):
    parsed = client.responses.parse(model="mock-chat", input="score this lead: Ana", text_format=Lead)
    assert isinstance(parsed.output_parsed, Lead)
    sent = parsed.text.format
    assert sent.type == "json_schema" and sent.name == "Lead"


def test_function_call_round_trip_with_previous_response_id(client, broker, org):
    first = client.responses.create(model="mock-chat", input="Weather in Lisbon?", tools=[WEATHER])
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id and call.id.startswith("fc_")
    assert isinstance(json.loads(call.arguments), dict)
    second = client.responses.create(model="mock-chat", previous_response_id=first.id, tools=[WEATHER], input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "19 degrees and clear"}])
    assert second.previous_response_id == first.id
    assert second.output[0].type == "message" and "19 degrees and clear" in second.output_text
    # the second call saw the whole history: user turn, the call, its result
    assert second.usage.input_tokens > first.usage.input_tokens
    items = client.responses.input_items.list(second.id)
    assert [i.type for i in items.data] == ["function_call_output"]


def test_streamed_function_call_has_argument_events(client):
    with client.responses.stream(model="mock-chat", input="Weather in Lisbon?", tools=[WEATHER], tool_choice="required") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.done" in kinds and kinds[-1] == "response.completed"
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    [call] = final.output
    assert call.type == "function_call" and done.arguments == call.arguments and done.item_id == call.id


def test_item_reference_resolves_a_stored_item(client):
    first = client.responses.create(model="mock-chat", input="remember the blue door")
    message_id = first.output[0].id
    second = client.responses.create(model="mock-chat", input=[
        {"role": "user", "content": "remember the blue door"}, {"type": "item_reference", "id": message_id},
        {"role": "user", "content": "which door"}])
    assert second.output_text == "Mock reply to: which door"
    items = client.responses.input_items.list(second.id, order="asc").data
    assert items[1].id == message_id and items[1].role == "assistant"  # the reference, resolved
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="mock-chat", input=[{"type": "item_reference", "id": "msg_nope_0"}])


def test_store_false_keeps_nothing(broker, org, client):
    response = client.responses.create(model="mock-chat", input="forget me", store=False)
    assert response.store is False and response.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="mock-chat", input="next", previous_response_id=response.id)
    assert broker.rows(StoredResponse, StoredResponse.organization_id == org["organization_id"]) == []
    assert [r.status for r in usage_rows(broker, org["organization_id"])] == ["success"]  # billed once, the lookup failure was not


def test_delete_and_input_items_paging(client):
    response = client.responses.create(model="mock-chat", input=[
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}, {"role": "user", "content": "three"}])
    page = client.responses.input_items.list(response.id, limit=2)
    assert [i.content[0].text for i in page.data] == ["three", "two"] and page.has_more
    rest = client.responses.input_items.list(response.id, limit=2, after=page.data[-1].id)
    assert [i.content[0].text for i in rest.data] == ["one"] and not rest.has_more
    assert client.responses.delete(response.id) is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)


def test_another_organizations_response_is_404(broker, client):
    mine = client.responses.create(model="mock-chat", input="private")
    other = broker.create_org("Other", credit="1")
    theirs = openai.OpenAI(base_url=broker.url + "/v1", api_key=other["api_key"], max_retries=0)
    for attempt in (lambda: theirs.responses.retrieve(mine.id), lambda: theirs.responses.delete(mine.id),
                    lambda: theirs.responses.input_items.list(mine.id),
                    lambda: theirs.responses.create(model="mock-chat", input="x", previous_response_id=mine.id),
                    lambda: theirs.responses.create(model="mock-chat", input=[{"type": "item_reference", "id": mine.output[0].id}])):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert client.responses.retrieve(mine.id).id == mine.id


@pytest.mark.parametrize("stream", [False, True])
def test_empty_wallet_is_402_unbilled_and_recorded(broker, stream):
    poor = broker.create_org("Poor", credit="0.000010")
    client = openai.OpenAI(base_url=broker.url + "/v1", api_key=poor["api_key"], max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        client.responses.create(model="mock-chat", input="x", max_output_tokens=4000, stream=stream)
    assert info.value.status_code == 402 and info.value.body["code"] == "insufficient_balance"
    [refused] = usage_rows(broker, poor["organization_id"])
    assert (refused.status, refused.endpoint, refused.billed_cost_micros) == ("refused", "responses", 0)
    assert broker.rows(StoredResponse, StoredResponse.organization_id == poor["organization_id"]) == []


@pytest.mark.parametrize("body", [
    {"model": "mock-chat"},
    {"model": "mock-chat", "input": ""},
    {"model": "mock-chat", "input": []},
    {"model": "mock-chat", "input": "x", "store": "yes"},
    {"model": "mock-chat", "input": "x", "max_output_tokens": 0},
    {"model": "mock-chat", "input": "x", "temperature": 3},
    {"model": "mock-chat", "input": "x", "tools": [{"type": "web_search"}]},
    {"model": "mock-chat", "input": "x", "text": {"format": {"type": "json_schema", "name": "bad name!", "schema": {}}}},
    {"model": "mock-chat", "input": [{"role": "robot", "content": "x"}]},
    {"model": "mock-chat", "input": [{"type": "message", "role": "user", "content": [{"type": "input_image"}]}]},
    {"model": "mock-chat", "input": [{"type": "function_call_output", "output": "x"}]},
    {"model": "mock-chat", "input": [{"type": "computer_call"}]},
    {"model": "mock-chat", "input": "x", "metadata": {"k": 1}},
    {"model": "mock-chat", "input": "x", "background": True},
    {"model": "mock-chat", "input": [{"role": "system", "content": "only a system turn"}]},
])
def test_bad_bodies_are_400_and_unbilled(broker, org, body):
    with broker.client(org["api_key"]) as http:
        response = http.post("/v1/responses", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert usage_rows(broker, org["organization_id"]) == []


def test_retrieve_and_listing_query_errors(broker, org, client):
    response = client.responses.create(model="mock-chat", input="x")
    with broker.client(org["api_key"]) as http:
        assert http.get(f"/v1/responses/{response.id}/input_items", params={"limit": 0}).status_code == 400
        assert http.get(f"/v1/responses/{response.id}/input_items", params={"order": "up"}).status_code == 400
        assert http.get("/v1/responses/resp_unknown").json()["error"]["code"] == "response_not_found"
        assert http.get(f"/v1/responses/{response.id}").status_code == 200
    with httpx.Client(base_url=broker.url) as anonymous:
        assert anonymous.get(f"/v1/responses/{response.id}").status_code == 401


def test_expired_responses_are_not_served_and_are_purged(broker, org, client):
    import asyncio
    import datetime as dt

    from sqlalchemy import update

    from aibroker.gateway.formats.responses_store import ResponseStore

    response = client.responses.create(model="mock-chat", input="old news")
    with broker.db.begin() as conn:
        conn.execute(update(StoredResponse).where(StoredResponse.id == response.id)
                     .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    store = ResponseStore(broker.services.db.sessions, 30)
    loop = broker.services.writer.loop
    assert asyncio.run_coroutine_threadsafe(store.purge(), loop).result(timeout=10) == 1
    assert broker.rows(StoredResponse, StoredResponse.id == response.id) == []


def test_billed_calls_keep_the_ledger_clean(broker, org, client):
    client.responses.create(model="mock-chat", input="one")
    with client.responses.stream(model="mock-chat", input="two words") as stream:
        stream.get_final_response()
    client.responses.create(model="mock-chat", input="three", tools=[WEATHER])
    broker.flush()
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "aibroker"), "verify-ledger"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**__import__("os").environ, "AIBROKER_DATABASE_URL": broker.database_url,
                                                      "AIBROKER_LOG_LEVEL": "warning"})
    assert done.returncode == 0, done.stdout + done.stderr


def test_concurrent_creates_are_each_stored_before_they_are_answered(broker):
    import asyncio

    org = broker.create_org("Busy", credit="10", plan="unlimited")

    async def run() -> list[str]:
        client = openai.AsyncOpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)
        async with client:
            created = await asyncio.gather(*(client.responses.create(model="mock-chat", input=f"turn {i}") for i in range(12)))
            # each answer's row is committed already: the next turn may chain on it at once
            chained = await asyncio.gather(*(client.responses.create(model="mock-chat", input="next", previous_response_id=r.id)
                                             for r in created))
            return [r.previous_response_id for r in chained]

    previous = asyncio.run(run())
    assert len(set(previous)) == 12
    assert len(broker.rows(StoredResponse, StoredResponse.organization_id == org["organization_id"])) == 24


def test_refusals_match_chat_profile_403_and_rate_limit_429(broker, org):
    with broker.client(org["api_key"]) as http:
        denied = http.post("/v1/responses", json={"model": "mock-chat", "input": "x"}, headers={"x-aibroker-profile": "admin"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "profile_not_allowed"
        statuses = []
        for _ in range(30):  # the default plan's hourly request limit, shared with chat
            statuses.append(http.post("/v1/responses", json={"model": "mock-chat", "input": "x", "store": False}).status_code)
            if statuses[-1] != 200:
                break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}
    rows = usage_rows(broker, org["organization_id"])
    refused = [(r.endpoint, r.error_type) for r in rows if r.status == "refused"]
    assert ("responses", "profile_not_allowed") in refused and len(refused) == 2
    assert all(r.billed_cost_micros == 0 for r in rows if r.status == "refused")


def test_cut_stream_ends_with_error_and_response_failed_and_bills_what_was_generated(broker, org, upstream):
    from tests.fakes.openai_upstream import Fault

    upstream.script([Fault(cut_after_chunks=3)])
    body = {"model": "openai/gpt-4o-mini", "input": "one two three four five six", "stream": True}
    with broker.client(org["api_key"]) as http, http.stream("POST", "/v1/responses", json=body) as response:
        assert response.status_code == 200
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-2:] == ["error", "response.failed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"]
    [row] = usage_rows(broker, org["organization_id"])
    assert row.status == "partial" and row.billed_cost_micros > 0  # billed what was generated, like chat
    assert broker.rows(StoredResponse, StoredResponse.organization_id == org["organization_id"]) == []
    with pytest.raises(openai.APIError):  # the SDK raises on the error event
        upstream.script([Fault(cut_after_chunks=3)])
        client = openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)
        with client.responses.stream(model="openai/gpt-4o-mini", input="one two three four") as stream:
            list(stream)

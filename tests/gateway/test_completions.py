"""POST /v1/completions with the official openai SDK: plain, several prompts, streamed (with
usage), billed and recorded like chat; what it does not serve is a 400, unbilled."""

from __future__ import annotations

import httpx
import pytest

from aibroker.models import LedgerEntry
from tests.fakes.openai_upstream import reply_text
from tests.support.usage import usage_rows


def test_plain_completion_is_billed_and_recorded(broker, org, client):
    raw = client.completions.with_raw_response.create(model="mock/mock-chat", prompt="say hello to the broker", max_tokens=50)
    completion = raw.parse()
    assert completion.object == "text_completion" and completion.id.startswith("cmpl")
    assert completion.model == "mock/mock-chat"
    [choice] = completion.choices
    assert (choice.text, choice.index, choice.logprobs, choice.finish_reason) == (
        "Mock reply to: say hello to the broker", 0, None, "stop")
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5 + 3, 8)
    [row] = usage_rows(broker, org["organization_id"])
    assert (row.endpoint, row.status, row.model, row.input_tokens, row.output_tokens) == (
        "completions", "success", "mock/mock-chat", 8, 8)
    assert raw.headers["x-aibroker-cost-micros"] == str(row.billed_cost_micros) and row.billed_cost_micros > 0
    [debit] = broker.rows(LedgerEntry, LedgerEntry.usage_record_id == row.id)
    assert debit.amount_micros == -row.billed_cost_micros


def test_default_max_tokens_is_16_and_a_prompt_list_gets_a_choice_each(broker, org, client):
    words = " ".join(f"w{i}" for i in range(30))
    completion = client.completions.create(model="mock-chat", prompt=[words, "second one"])
    assert [c.index for c in completion.choices] == [0, 1]
    assert len(completion.choices[0].text.split()) == 16 and completion.choices[1].text == "Mock reply to: second one"
    rows = usage_rows(broker, org["organization_id"])
    assert len(rows) == 2 and completion.usage.completion_tokens == sum(r.output_tokens for r in rows)


def test_upstream_model_by_translation(broker, org, client, upstream):
    completion = client.completions.create(model="openai/gpt-4o-mini", prompt="hi there", max_tokens=20)
    assert completion.choices[0].text == reply_text([{"role": "user", "content": "hi there"}])
    [sent] = [r for r in upstream.requests if r.path.endswith("/chat/completions")]
    assert sent.body["messages"] == [{"role": "user", "content": "hi there"}] and sent.body["max_tokens"] == 20


def test_streamed_completion_with_usage(broker, org, client):
    plain = client.completions.create(model="mock-chat", prompt="stream me some words", max_tokens=50)
    chunks = list(client.completions.create(model="mock-chat", prompt="stream me some words", max_tokens=50,
                                            stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == plain.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens == plain.usage.completion_tokens
    assert last.model_extra["aibroker"]["cost_micros"] > 0
    rows = usage_rows(broker, org["organization_id"])
    assert [r.streamed for r in rows] == [False, True] and rows[0].billed_cost_micros == rows[1].billed_cost_micros


@pytest.mark.parametrize("extra, param", [
    ({"n": 2}, "n"), ({"suffix": "end"}, "suffix"), ({"echo": True}, "echo"), ({"logprobs": 2}, "logprobs"),
    ({"prompt": [1, 2, 3]}, "prompt"), ({"max_tokens": "9"}, "max_tokens"), ({"prompt": ""}, "prompt"),
    ({"stream": True, "prompt": ["a", "b"]}, "prompt"),
])
def test_unsupported_or_bad_bodies_are_400_unbilled(broker, org, extra, param):
    body = {"model": "mock-chat", "prompt": "hi", **extra}
    response = httpx.post(broker.url + "/v1/completions", json=body, headers={"authorization": f"Bearer {org['api_key']}"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"].startswith(param)
    assert [r.billed_cost_micros for r in usage_rows(broker, org["organization_id"])] in ([], [0])

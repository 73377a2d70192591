"""/v1/completions on a consensus feature: each prompt is voted on as on chat (the same feature
header or body `feature`, the same `aibroker.include_votes`), every vote billed and recorded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import openai
import pytest

from aibroker.models import LedgerEntry, UsageRecord

ROOT = Path(__file__).resolve().parents[2]
VOTES = {"aibroker": {"include_votes": True}}


def _client(routed, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=routed.url + "/v1", api_key=key, max_retries=0)


def test_completions_vote_like_chat_and_bill_every_vote(routed):
    org = routed.create_org("Pro", plan="professional")
    client = _client(routed, org["api_key"])
    raw = client.completions.with_raw_response.create(
        model="auto", prompt=["Is this review positive or negative?", "And this one?"],
        extra_headers={"x-aibroker-feature": "sentimento"}, extra_body=VOTES)
    completion = raw.parse()
    assert [c.text for c in completion.choices] == ["Positive.", "Positive."]  # majority: 2 of 3 say positive
    assert [c.index for c in completion.choices] == [0, 1] and completion.object == "text_completion"
    votes = completion.model_extra["aibroker"]
    assert votes["mode"] == "consensus" and len(votes["choices"]) == 2
    assert all(v["strategy"] == "majority" and len(v["votes"]) == 3 for v in votes["choices"])
    assert raw.headers["x-aibroker-mode"] == "consensus"
    chat = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Is this review positive or negative?"}],
                                          extra_headers={"x-aibroker-feature": "sentimento"})
    assert chat.choices[0].message.content == completion.choices[0].text  # the same vote as chat's
    routed.flush()
    rows = routed.rows(UsageRecord, UsageRecord.request_id == raw.headers["x-request-id"])
    assert len(rows) == 6 and {r.endpoint for r in rows} == {"completions"} and {r.feature for r in rows} == {"sentimento"}
    assert {r.model for r in rows} == {"mock/mock-vote-a", "mock/mock-vote-b", "mock/mock-vote-c"}
    assert sum(r.billed_cost_micros for r in rows) == int(raw.headers["x-aibroker-cost-micros"]) > 0
    assert completion.usage.prompt_tokens == sum(r.input_tokens for r in rows)
    for row in rows:
        [debit] = routed.rows(LedgerEntry, LedgerEntry.usage_record_id == row.id)
        assert debit.amount_micros == -row.billed_cost_micros
    ledger = subprocess.run([str(ROOT / ".venv" / "bin" / "aibroker"), "verify-ledger"], capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "AIBROKER_DATABASE_URL": routed.database_url})
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr


def test_completions_consensus_by_body_feature_without_votes_and_not_streamed(routed):
    org = routed.create_org("Pro", plan="professional")
    client = _client(routed, org["api_key"])
    completion = client.completions.create(model="auto", prompt="Is it good?", extra_body={"feature": "sentimento"})
    assert completion.choices[0].text == "Positive." and "aibroker" not in (completion.model_extra or {})
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="auto", prompt="Is it good?", stream=True, extra_body={"feature": "sentimento"})
    assert refused.value.code == "consensus_stream_unsupported"
    with pytest.raises(openai.BadRequestError) as bad:
        client.completions.create(model="auto", prompt="x", extra_body={"feature": "sentimento", "aibroker": "votes"})
    assert bad.value.status_code == 400
    plain = client.completions.create(model="auto", prompt="Summarise this", extra_headers={"x-aibroker-feature": "resumo"})
    assert plain.choices[0].text.startswith("Mock reply")  # a routed feature that does not vote: one call
    routed.flush()
    rows = routed.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"], UsageRecord.status == "success")
    assert sorted(r.feature for r in rows) == ["resumo", "sentimento", "sentimento", "sentimento"]


def test_a_plan_without_the_consensus_row_answers_as_chat_does(routed):
    """MOCK_CONFIG routes `sentimento` for the professional plan only: completions decide as chat."""
    org = routed.create_org("Free", plan="free")
    with routed.client(org["api_key"]) as http:
        headers = {"x-aibroker-feature": "sentimento"}
        chat = http.post("/v1/chat/completions", headers=headers, json={"model": "auto", "messages": [{"role": "user", "content": "Good?"}]})
        completion = http.post("/v1/completions", headers=headers, json={"model": "auto", "prompt": "Good?"})
    assert completion.status_code == chat.status_code
    assert completion.headers.get("x-aibroker-mode") == chat.headers.get("x-aibroker-mode")
    if chat.status_code == 200:
        assert completion.json()["choices"][0]["text"] == chat.json()["choices"][0]["message"]["content"]
    else:
        assert completion.json()["error"]["code"] == chat.json()["error"]["code"]

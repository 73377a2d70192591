"""POST /v1/moderations with the openai SDK: mock-moderation by keyword, OpenAI's models
passed through to the fake; free but admitted and recorded at cost 0."""

from __future__ import annotations

import httpx
import pytest

from aibroker.models import LedgerEntry, UsageRecord
from aibroker.providers.mock_media import CATEGORY_WORDS


def _rows(broker, org_id):
    broker.flush()
    return broker.rows(UsageRecord, UsageRecord.organization_id == org_id)


@pytest.mark.parametrize("model", ["mock-moderation", "mock/mock-moderation"])
def test_mock_moderation_flags_by_keyword(broker, org, client, model):
    raw = client.moderations.with_raw_response.create(model=model, input=["I will kill the process", "a calm sentence"])
    result = raw.parse()
    assert result.model == model and result.id.startswith("modr")
    violent, calm = result.results
    assert violent.flagged and violent.categories.violence and violent.category_scores.violence == 0.9
    assert not violent.categories.harassment and violent.category_scores.harassment == 0.0001
    assert not calm.flagged and not any(calm.categories.model_dump(by_alias=True).values())
    assert set(calm.categories.model_dump(by_alias=True)) == set(CATEGORY_WORDS)
    assert violent.category_applied_input_types.violence == ["text"]
    assert raw.headers["x-aibroker-cost-micros"] == "0"
    [row] = _rows(broker, org["organization_id"])
    assert (row.endpoint, row.status, row.model, row.billed_cost_micros) == ("moderations", "success", "mock/mock-moderation", 0)
    assert [e.kind for e in broker.rows(LedgerEntry, LedgerEntry.organization_id == org["organization_id"])] == ["recharge"]


def test_multimodal_input_is_one_result(broker, org, client):
    result = client.moderations.create(model="mock-moderation", input=[
        {"type": "text", "text": "nothing here"}, {"type": "image_url", "image_url": {"url": "https://x.test/gore.png"}}])
    [one] = result.results
    assert one.flagged and one.categories.violence_graphic and not one.categories.harassment
    assert one.category_applied_input_types.violence == ["image", "text"]
    assert one.category_applied_input_types.harassment == ["text"]


def test_openai_models_pass_through(broker, org, client, upstream):
    result = client.moderations.create(input="kill it")  # default omni-moderation-latest
    assert result.results[0].flagged and result.results[0].categories.violence
    assert result.model == "omni-moderation-2024-09-26"  # the upstream's snapshot: no model was asked
    text = client.moderations.create(model="text-moderation-latest", input="fine")
    assert text.model == "text-moderation-latest" and not text.results[0].flagged
    sent = [r.body for r in upstream.requests if r.path == "/v1/moderations"]
    assert sent == [{"input": "kill it", "model": "omni-moderation-latest"}, {"input": "fine", "model": "text-moderation-latest"}]
    rows = _rows(broker, org["organization_id"])
    assert sorted(r.model for r in rows) == ["openai/omni-moderation-latest", "openai/text-moderation-latest"]
    assert {r.billed_cost_micros for r in rows} == {0}


@pytest.mark.parametrize("body", [
    {"input": 5}, {"input": []}, {"model": "mock-moderation"}, {"input": [{"type": "audio"}]},
    {"model": "mock-chat", "input": "x"},
])
def test_bad_bodies_are_400(broker, org, body):
    response = httpx.post(broker.url + "/v1/moderations", json=body, headers={"authorization": f"Bearer {org['api_key']}"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert all(r.status != "success" for r in _rows(broker, org["organization_id"]))

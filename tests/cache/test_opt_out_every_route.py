"""The cache opt-outs (`Cache-Control: no-store`, body `"cache": false`) on /v1/messages and
/api/ai/broker, and for every vote of a consensus request."""

from __future__ import annotations

import pytest

from aibroker.models import UsageRecord
from tests.routing.conftest import MOCK_CONFIG, load_yaml

QUESTION = {"role": "user", "content": "Is this review positive or negative?"}


@pytest.fixture
def org(broker):
    return broker.create_org("Cachey", plan="unlimited")


def _message(client, headers=None, **body):
    payload = {"model": "openai/gpt-4o-mini", "max_tokens": 50, "temperature": 0,
               "messages": [{"role": "user", "content": "what is a broker"}], **body}
    return client.post("/v1/messages", json=payload, headers=headers or {})


def test_messages_honour_no_store_and_the_body_flag(broker, upstream, org):
    with broker.client(org["api_key"]) as client:
        first, second = _message(client), _message(client)
        no_store = _message(client, headers={"cache-control": "no-store"})
        flag = _message(client, cache=False)
    assert [r.status_code for r in (first, second, no_store, flag)] == [200] * 4, first.text
    assert [r.headers["x-aibroker-cache"] for r in (first, second, no_store, flag)] == ["miss", "hit", "bypass", "bypass"]
    assert no_store.json()["content"] == first.json()["content"]
    assert len(upstream.requests) == 3  # the hit never went upstream; the opt-outs did
    assert "cache" not in upstream.requests[-1].body  # the broker's flag is not sent upstream


def test_broker_api_honours_the_body_flag(broker, upstream, org):
    ask = {"prompt": "hello", "model": "gpt-4o-mini", "temperature": 0}
    with broker.client(org["api_key"]) as client:
        statuses = [client.post("/api/ai/broker", json=body).headers["x-aibroker-cache"]
                    for body in (ask, {**ask, "cache": False}, ask)]
    assert statuses == ["miss", "bypass", "hit"]
    assert len(upstream.requests) == 2


def _cached_votes(broker, client, org_id, headers=None):
    response = client.post(
        "/v1/chat/completions", headers={"x-aibroker-feature": "sentimento", **(headers or {})},
        json={"model": "auto", "temperature": 0, "messages": [QUESTION]},
    )
    assert response.status_code == 200, response.text
    broker.flush()
    rows = broker.rows(UsageRecord, UsageRecord.organization_id == org_id,
                       UsageRecord.request_id == response.headers["x-request-id"])
    assert len(rows) == 3  # one per voter
    return sorted(r.cached for r in rows)


def test_consensus_votes_neither_read_nor_write_the_cache_with_no_store(broker, tmp_path):
    load_yaml(broker, tmp_path, MOCK_CONFIG)
    org = broker.create_org("Voters", plan="professional")
    no_store = {"cache-control": "no-store"}
    with broker.client(org["api_key"]) as client:
        cached = [_cached_votes(broker, client, org["organization_id"], h) for h in (no_store, None, no_store, None)]
    # no-store wrote nothing (the next plain request misses), and does not read what that one
    # wrote (while the last plain request finds it)
    assert cached == [[False] * 3, [False] * 3, [False] * 3, [True] * 3]

"""402 before any upstream call: a wallet that cannot afford the hold is refused with the
available and required amounts; the provider is never called and nothing is debited."""

from __future__ import annotations

import openai
import pytest

from aibroker.billing.estimate import chat_input_bound
from aibroker.billing.pricing import bound_cost
from aibroker.models import LedgerEntry, UsageRecord, WalletHold
from tests.billing.conftest import wallet_row

MESSAGES = [{"role": "user", "content": "can I afford this?"}]


@pytest.fixture
def poor(broker):
    return broker.create_org("Poor", credit="0.0001")  # 100 micros


def _expected_bound(broker, model: str, max_tokens: int) -> int:
    entry = broker.services.catalog.resolve(model)
    body = {"messages": MESSAGES}
    return bound_cost(entry, chat_input_bound(body, entry.context_length), max_tokens, 3000)


@pytest.mark.parametrize("stream", [False, True])
def test_402_names_available_and_required_and_never_calls_upstream(broker, poor, upstream, stream):
    with broker.client(poor["api_key"]) as http:
        response = http.post(
            "/v1/chat/completions",
            json={"model": "openai/gpt-4o-mini", "messages": MESSAGES, "max_tokens": 1000, "stream": stream},
        )
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["type"] == "insufficient_balance" and error["code"] == "insufficient_balance"
    assert error["available_micros"] == 100
    assert error["required_micros"] == _expected_bound(broker, "openai/gpt-4o-mini", 1000) > 100
    assert upstream.requests == []
    broker.flush()
    [refused] = broker.rows(UsageRecord, UsageRecord.organization_id == poor["organization_id"])  # recorded, not charged
    assert (refused.status, refused.error_type, refused.billed_cost_micros, refused.model) == ("refused", "insufficient_balance", 0, "openai/gpt-4o-mini")
    assert [e.kind for e in broker.rows(LedgerEntry, LedgerEntry.organization_id == poor["organization_id"])] == ["recharge"]
    wallet = wallet_row(broker, poor["organization_id"])
    assert (wallet.balance_micros, wallet.held_micros) == (100, 0)
    assert broker.rows(WalletHold) == []


def test_an_affordable_request_still_passes_and_the_sdk_sees_402(broker, poor, upstream):
    client = openai.OpenAI(base_url=broker.url + "/v1", api_key=poor["api_key"], max_retries=0)
    small = client.chat.completions.with_raw_response.create(model="mock-chat", messages=MESSAGES, max_tokens=3)
    assert small.http_response.status_code == 200
    cost = int(small.headers["x-aibroker-cost-micros"])
    assert int(small.headers["x-aibroker-balance-micros"]) == 100 - cost
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)  # capped at 4096 output tokens
    assert info.value.status_code == 402
    assert upstream.requests == []
    wallet = wallet_row(broker, poor["organization_id"])
    assert (wallet.balance_micros, wallet.held_micros) == (100 - cost, 0)

"""A cut stream is billed for what was generated, estimated once over the whole text:
300 one-word chunks bill close to 300 output tokens, not 2 per chunk."""

from __future__ import annotations

import pytest

from aibroker.billing.estimate import generated_tokens
from aibroker.models import LedgerEntry, UsageRecord
from tests.billing.conftest import wallet_row
from tests.fakes.openai_upstream import Fault

WORDS = 300


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" word" * WORDS, WORDS),  # a one-word chunk is one token, not a token plus rounding
        ("The quick brown fox jumps over the lazy dog.", 10),  # cl100k: 10
        ("你好世界", 4),  # about one token per CJK character
        ("", 0),
    ],
)
def test_generated_tokens_estimates_the_whole_text(text, expected):
    assert generated_tokens(text) == expected


def test_the_estimate_never_exceeds_the_bytes_nor_max_tokens():
    assert generated_tokens("!!!!") <= 4
    assert generated_tokens(" word" * WORDS, max_tokens=100) == 100


def test_300_one_word_chunks_bill_within_30_percent_of_300_tokens(broker, org, upstream):
    # The fake echoes the prompt one word per chunk: role, "Echo:", then the 300 words; cut there.
    upstream.script([Fault(cut_after_chunks=WORDS + 2)])
    prompt = " ".join(["word"] * WORDS)
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], "stream": True}
    with broker.client(org["api_key"]) as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        relayed = [line for line in response.iter_lines() if line.startswith("data: ") and '"content"' in line]
    assert len(relayed) >= WORDS
    broker.flush()
    [row] = broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    assert row.status == "partial" and row.streamed
    assert 0.7 * WORDS <= row.output_tokens <= 1.3 * WORDS, row.output_tokens
    [debit] = broker.rows(LedgerEntry, LedgerEntry.organization_id == org["organization_id"], LedgerEntry.kind == "debit")
    assert debit.amount_micros == -row.billed_cost_micros and row.billed_cost_micros > 0
    assert wallet_row(broker, org["organization_id"]).held_micros == 0

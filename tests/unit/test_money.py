from decimal import Decimal

import pytest

from aibroker.billing.estimate import IMAGE_TOKENS, chat_input_bound, embedding_input_bound
from aibroker.billing.pricing import bound_cost, cost_of, exact_cost
from aibroker.catalog.registry import ModelEntry, load_packaged
from aibroker.kit.money import apply_margin, format_micros, price_to_micros, to_micros
from aibroker.providers.base import Usage

MODEL = ModelEntry(
    id="x/m", provider="x", name="m", input_micros_per_m=3_000_000, output_micros_per_m=15_000_000,
    cached_input_micros_per_m=300_000, cache_write_micros_per_m=3_750_000, context_length=1000, max_output_tokens=500,
)


def test_to_micros_is_exact_and_refuses_fractions_of_a_micro():
    assert to_micros("12.5") == 12_500_000
    assert to_micros(Decimal("0.000001")) == 1
    with pytest.raises(ValueError, match="6 decimal places"):
        to_micros("0.0000001")
    with pytest.raises(ValueError):
        to_micros("abc")
    with pytest.raises(ValueError):
        to_micros("NaN")


def test_format_micros():
    assert format_micros(1_250_000) == "1.250000"
    assert format_micros(-5) == "-0.000005"


def test_price_and_margin_round_up_once():
    assert price_to_micros("0.15") == 150_000
    assert price_to_micros("0.0000001") == 1  # never under-priced
    # 7 tokens at 1 micro per 1M tokens: 7e-6 micros exact -> billed 1 micro, not 0
    assert apply_margin(7, 3000) == 1
    assert apply_margin(1_000_000 * 10, 3000) == 13


def test_cost_prices_cached_and_cache_write_tokens():
    usage = Usage(input_tokens=1000, output_tokens=100, cached_tokens=600, cache_write_tokens=200)
    exact = 200 * 3_000_000 + 600 * 300_000 + 200 * 3_750_000 + 100 * 15_000_000
    assert exact_cost(MODEL, usage) == exact
    cost = cost_of(MODEL, usage, 3000)
    assert cost.provider_micros == -(-exact // 1_000_000)
    assert cost.billed_micros == -(-exact * 13_000 // 10_000_000_000)
    byok = cost_of(MODEL, usage, 3000, byok_fee_micros=50)
    assert byok.billed_micros == 50 and byok.provider_micros == cost.provider_micros


def test_the_bound_is_never_below_any_real_cost():
    bound = bound_cost(MODEL, 1000, 500, 3000)
    worst = Usage(input_tokens=1000, output_tokens=500, cache_write_tokens=1000)  # the dearest input
    assert cost_of(MODEL, worst, 3000).billed_micros <= bound


def test_input_bound_counts_bytes_messages_images_and_tools():
    body = {
        "messages": [
            {"role": "user", "content": "héllo"},  # 6 bytes
            {"role": "user", "content": [{"type": "text", "text": "ab"}, {"type": "image_url", "image_url": {"url": "x"}}]},
        ],
        "tools": [{"type": "function"}],
    }
    bound = chat_input_bound(body, 0)
    assert bound >= 6 + 2 + IMAGE_TOKENS + len('[{"type":"function"}]')
    assert chat_input_bound(body, 100) == 100  # never more than the context window


def test_embedding_bound():
    assert embedding_input_bound({"input": "abc"}) >= 3
    assert embedding_input_bound({"input": [[1, 2, 3], [4]]}) == 4


def test_packaged_catalog_is_complete():
    catalog = load_packaged()
    for model_id in ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash", "xai/grok-4",
                     "mock/mock-chat", "mock/mock-embed", "mock/mock-slow", "mock/mock-flaky"):
        entry = catalog[model_id]
        assert entry.context_length > 0
    assert any(e.provider == "together" for e in catalog.values())
    assert catalog["openai/gpt-4o-mini"].input_micros_per_m == 150_000

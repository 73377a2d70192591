"""What a realtime response costs: text and audio tokens, each at its catalog price, then the
margin, rounded up once (the same arithmetic as billing/pricing.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from aibroker.billing.pricing import Cost
from aibroker.catalog.registry import ModelEntry
from aibroker.kit.money import TOKENS_PER_PRICE_UNIT, apply_margin, ceil_div
from aibroker.providers.base import Usage

# Audio tokens per second of speech, for the holds ahead of use and for a response cut before
# its usage event. OpenAI: user audio ~1 token / 100 ms, assistant audio ~1 token / 50 ms
# (realtime-costs guide). Gemini: ~32 tokens / s both ways [verify]; the larger rate is used
# for every model so the hold stays an upper bound.
INPUT_AUDIO_TOKENS_PER_SECOND = 32
OUTPUT_AUDIO_TOKENS_PER_SECOND = 32


@dataclass(slots=True)
class RealtimeUsage:
    """One response's tokens by modality (OpenAI Realtime's `response.done` usage)."""

    input_text: int = 0
    input_audio: int = 0
    cached_text: int = 0
    cached_audio: int = 0
    output_text: int = 0
    output_audio: int = 0
    estimated: bool = False

    @property
    def input_tokens(self) -> int:
        return self.input_text + self.input_audio

    @property
    def output_tokens(self) -> int:
        return self.output_text + self.output_audio

    def as_usage(self) -> Usage:
        """The broker's Usage for the usage record (totals; the modalities stay on the session)."""
        return Usage(self.input_tokens, self.output_tokens, cached_tokens=self.cached_text + self.cached_audio,
                     estimated=self.estimated)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_event(usage: dict[str, Any] | None) -> RealtimeUsage:
    """`response.done.response.usage` (GA and beta shapes). Without details every token is
    text; image tokens are priced as text input."""
    if not isinstance(usage, dict):
        return RealtimeUsage()
    total_in, total_out = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    details_in = usage.get("input_token_details") if isinstance(usage.get("input_token_details"), dict) else {}
    details_out = usage.get("output_token_details") if isinstance(usage.get("output_token_details"), dict) else {}
    audio_in = min(_int(details_in.get("audio_tokens")), total_in)
    audio_out = min(_int(details_out.get("audio_tokens")), total_out)
    cached_details = details_in.get("cached_tokens_details") if isinstance(details_in.get("cached_tokens_details"), dict) else {}
    cached_audio = min(_int(cached_details.get("audio_tokens")), audio_in)
    cached_all = _int(details_in.get("cached_tokens"))
    cached_text = min(max(cached_all - cached_audio, 0), total_in - audio_in)
    return RealtimeUsage(
        input_text=total_in - audio_in, input_audio=audio_in, cached_text=cached_text, cached_audio=cached_audio,
        output_text=total_out - audio_out, output_audio=audio_out,
    )


def exact_cost(model: ModelEntry, usage: RealtimeUsage) -> int:
    """Provider cost in micro-micros (micros x 1e6), exact."""
    return (
        (usage.input_text - usage.cached_text) * model.input_micros_per_m
        + usage.cached_text * model.cached_input_micros_per_m
        + (usage.input_audio - usage.cached_audio) * model.audio_input_micros_per_m
        + usage.cached_audio * model.cached_audio_input_micros_per_m
        + usage.output_text * model.output_micros_per_m
        + usage.output_audio * model.audio_output_micros_per_m
    )


def cost_of(model: ModelEntry, usage: RealtimeUsage, margin_bps: int, *, byok_fee_micros: int | None = None) -> Cost:
    exact = exact_cost(model, usage)
    provider = ceil_div(exact, TOKENS_PER_PRICE_UNIT)
    if byok_fee_micros is not None:
        return Cost(provider_micros=provider, billed_micros=byok_fee_micros, margin_bps=0)
    return Cost(provider_micros=provider, billed_micros=apply_margin(exact, margin_bps), margin_bps=margin_bps)


def audio_usage(input_ms: float, output_ms: float, output_text_tokens: int = 0) -> RealtimeUsage:
    """Tokens of audio heard and spoken, from their durations (a response cut before its usage
    event, and the holds ahead of use)."""
    return RealtimeUsage(
        input_audio=math.ceil(input_ms * INPUT_AUDIO_TOKENS_PER_SECOND / 1000),
        output_audio=math.ceil(output_ms * OUTPUT_AUDIO_TOKENS_PER_SECOND / 1000),
        output_text=output_text_tokens, estimated=True,
    )


def increment_micros(model: ModelEntry, seconds: float, margin_bps: int) -> int:
    """One rolling hold: `seconds` of audio both ways at the model's audio prices, plus as
    many text tokens (the transcript and instructions the context carries), margin added."""
    usage = audio_usage(seconds * 1000, seconds * 1000)
    usage.input_text = usage.output_text = usage.input_audio
    return max(1, apply_margin(exact_cost(model, usage), margin_bps))

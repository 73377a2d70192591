"""Image generation and audio transcription through the same pipeline as chat:
route -> capability check -> admit -> hold -> call (retries, fallbacks) -> settle.

Prices are per unit, from the catalog: per image (optionally per quality/size) and per
minute of audio. Usage records say endpoint "images" (output_tokens = images returned) or
"audio" (input_tokens = seconds of audio billed), "speech" (input_tokens = characters spoken,
priced per 1M characters: known before the call, so the hold is the exact cost) or
"moderations" (free, as OpenAI's: recorded at cost 0).

How long is an audio file? (the hold must be a true upper bound, before the call)
- WAV: read from its header (stdlib `wave`): exact; held and billed as such.
- Anything else: held as if encoded at MIN_AUDIO_BITRATE (8 kbps, below any usable speech
  encoding, so the bound is safe); billed at the duration the provider reports (verbose_json
  `duration` or whisper's usage seconds), never above the bound; with no report, the bound.
Billing counts whole seconds, rounded up, once.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aibroker.billing.batch import Settled
from aibroker.billing.byok_budget import reserve_budgets
from aibroker.billing.pricing import Cost
from aibroker.catalog.registry import AUDIO, IMAGE, MODERATION, SPEECH, ModelEntry
from aibroker.errors import InvalidRequest
from aibroker.gateway.context import CallContext
from aibroker.gateway.streaming import echo_model
from aibroker.gateway.validation import check_audio, check_images, check_moderation, check_speech
from aibroker.kit.audio import wav_seconds
from aibroker.kit.money import BPS, ceil_div
from aibroker.providers.base import AudioFile, Call, Provider, SpeechAudio, Usage
from aibroker.providers.errors import ProviderBadRequest

if TYPE_CHECKING:
    from aibroker.gateway.service import Answer, Gateway

MIN_AUDIO_BITRATE = 8_000  # bits per second assumed for the hold of a non-WAV file
DEFAULT_MODERATION_MODEL = "omni-moderation-latest"  # OpenAI's default
FREE = Cost(provider_micros=0, billed_micros=0, margin_bps=0)
BROKER_FIELDS = ("feature", "cache", "aibroker", "user_name")


def image_price(model: ModelEntry, quality: str | None, size: str | None) -> int:
    """Micros per image: "quality/size", then "quality", then "size", then the default."""
    prices = dict(model.image_micros_by)
    for key in (f"{quality}/{size}", quality, size):
        if key and key in prices:
            return prices[key]
    return model.image_micros


def image_bound(model: ModelEntry, quality: str | None, size: str | None) -> int:
    """The most one image can cost: exact when quality and size are fixed, else the dearest
    price that could apply (the provider picks "auto" quality or size)."""
    known = lambda v: v not in (None, "", "auto")  # noqa: E731
    if known(quality) and known(size):
        return image_price(model, quality, size)
    return max([model.image_micros, *(price for _, price in model.image_micros_by)])


def audio_hold_seconds(audio: AudioFile) -> int:
    exact = wav_seconds(audio.content)
    if exact is not None:
        return max(1, math.ceil(exact))
    return max(1, ceil_div(len(audio.content) * 8, MIN_AUDIO_BITRATE))


def audio_billed_seconds(audio: AudioFile, reported: float | None, bound: int) -> int:
    if wav_seconds(audio.content) is not None:
        return bound  # the header is exact
    if reported is None:
        return bound
    return min(bound, max(1, math.ceil(reported)))


def unit_cost(numerator_micros: int, denominator: int, margin_bps: int) -> Cost:
    """(numerator / denominator) micros from the provider, margin added, each rounded up once."""
    provider = ceil_div(numerator_micros, denominator)
    billed = ceil_div(numerator_micros * (BPS + margin_bps), denominator * BPS)
    return Cost(provider_micros=provider, billed_micros=billed, margin_bps=margin_bps)


def _upstream_body(model: ModelEntry, body: dict[str, Any]) -> dict[str, Any]:
    upstream = {k: v for k, v in body.items() if k not in BROKER_FIELDS}
    upstream["model"] = model.name
    return upstream


def _method(provider: Provider, name: str, model: ModelEntry) -> Callable[..., Awaitable[Any]]:
    method = getattr(provider, name, None)
    if method is None:
        raise ProviderBadRequest(
            f"The provider '{model.provider}' has no {name} support in this broker.", provider=model.provider
        )
    return method  # type: ignore[no-any-return]


class MediaGateway:
    """Per-unit priced calls, reusing the Gateway's router, admission, money and runner."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def _chain(self, ctx: CallContext, requested: str | None, kind: str, check: Callable[[ModelEntry], None]) -> list[ModelEntry]:
        chain = self.gateway.router.candidates(ctx, requested, kind)
        check(chain[0])  # the primary must have the capability: say so before any charge
        fits = []
        for model in chain[1:]:
            try:
                check(model)
            except Exception:
                continue
            fits.append(model)
        return [chain[0], *fits]

    def _cost(self, ctx: CallContext, model: ModelEntry, numerator: int, denominator: int) -> Cost:
        if model.provider in ctx.byok_keys:
            return Cost(ceil_div(numerator, denominator), self.gateway.billing.byok_fee_micros, 0)
        return unit_cost(numerator, denominator, self.gateway.margin_for(ctx))

    async def generate_images(self, ctx: CallContext, body: dict[str, Any]) -> Answer:
        gateway = self.gateway
        await gateway.load_byok(ctx)
        gateway.admission.screen(ctx, body, IMAGE)  # the blocklist, length limit and redaction apply to prompts too
        chain = self._chain(ctx, body.get("model"), IMAGE, check_images)
        n = int(body.get("n") or 1)
        quality, size = body.get("quality"), body.get("size")
        await reserve_budgets(gateway, ctx, chain, lambda m: n * image_bound(m, quality, size))
        bound = max(self._cost(ctx, m, n * image_bound(m, quality, size), 1).billed_micros for m in chain)
        calls = [(m, Call(m, _upstream_body(m, body), api_key=ctx.byok_keys.get(m.provider))) for m in chain]

        def settle_as(model: ModelEntry, result: Any) -> tuple[Usage, Cost]:
            count = len(result.body.get("data") or [])
            # The provider says which quality/size it chose ("auto"); else what was asked.
            price = image_price(model, result.body.get("quality") or quality, result.body.get("size") or size)
            return Usage(output_tokens=count), self._cost(ctx, model, count * price, 1)

        return await self._run(ctx, body, chain, calls, bound, lambda p, c: _method(p, "images", c.model)(c), settle_as)

    async def transcribe(self, ctx: CallContext, fields: dict[str, Any], audio: AudioFile) -> tuple[Answer, int]:
        """The answer and the seconds billed."""
        gateway = self.gateway
        await gateway.load_byok(ctx)
        gateway.admission.screen(ctx, fields, AUDIO)
        chain = self._chain(ctx, fields.get("model"), AUDIO, check_audio)
        hold_seconds = audio_hold_seconds(audio)
        await reserve_budgets(gateway, ctx, chain, lambda m: ceil_div(hold_seconds * m.audio_minute_micros, 60))
        bound = max(self._cost(ctx, m, hold_seconds * m.audio_minute_micros, 60).billed_micros for m in chain)
        calls = [(m, Call(m, _upstream_body(m, fields), api_key=ctx.byok_keys.get(m.provider))) for m in chain]
        billed: list[int] = []

        def settle_as(model: ModelEntry, result: Any) -> tuple[Usage, Cost]:
            seconds = audio_billed_seconds(audio, result.seconds, hold_seconds)
            billed.append(seconds)
            return Usage(input_tokens=seconds), self._cost(ctx, model, seconds * model.audio_minute_micros, 60)

        answer = await self._run(
            ctx, fields, chain, calls, bound, lambda p, c: _method(p, "transcribe", c.model)(c, audio), settle_as
        )
        return answer, billed[0]

    async def moderate(self, ctx: CallContext, body: dict[str, Any]) -> Answer:
        """Free (cost 0) but admitted, counted and recorded like any call. No input rules:
        moderating a blocked text is the point."""
        gateway = self.gateway
        await gateway.load_byok(ctx)
        chain = self._chain(ctx, body.get("model") or DEFAULT_MODERATION_MODEL, MODERATION, check_moderation)
        calls = [(m, Call(m, _upstream_body(m, body), api_key=ctx.byok_keys.get(m.provider))) for m in chain]
        answer = await self._run(
            ctx, body, chain, calls, 0, lambda p, c: _method(p, "moderate", c.model)(c), lambda _m, _r: (Usage(), FREE)
        )
        answer.body = echo_model(answer.body, body, answer.model)
        return answer

    def _speaks(self, model: ModelEntry, fmt: str) -> bool:
        formats = getattr(self.gateway.pool.get(model.provider), "speech_formats", None)
        return formats is None or fmt in formats

    async def speak(self, ctx: CallContext, body: dict[str, Any]) -> tuple[Answer, SpeechAudio]:
        """Billed per character of `input` at the catalog's per-1M-characters price."""
        gateway = self.gateway
        await gateway.load_byok(ctx)
        gateway.admission.screen(ctx, body, SPEECH)
        chain = self._chain(ctx, body.get("model"), SPEECH, check_speech)
        fmt = body.get("response_format") or "wav"  # a provider that lists its formats defaults to wav
        if not self._speaks(chain[0], fmt):
            formats = getattr(gateway.pool.get(chain[0].provider), "speech_formats", ())
            raise InvalidRequest(
                f"The model '{chain[0].id}' answers response_format {' or '.join(formats)}, not '{fmt}'.",
                param="response_format", code="unsupported_format",
            )
        chain = [chain[0], *(m for m in chain[1:] if self._speaks(m, fmt))]
        chars = len(body["input"])
        await reserve_budgets(gateway, ctx, chain, lambda m: ceil_div(chars * m.speech_micros_per_m_chars, 1_000_000))
        bound = max(self._cost(ctx, m, chars * m.speech_micros_per_m_chars, 1_000_000).billed_micros for m in chain)
        calls = [(m, Call(m, _upstream_body(m, body), api_key=ctx.byok_keys.get(m.provider))) for m in chain]
        spoken: list[SpeechAudio] = []

        def settle_as(model: ModelEntry, audio: SpeechAudio) -> tuple[Usage, Cost]:
            spoken.append(audio)
            return Usage(input_tokens=chars), self._cost(ctx, model, chars * model.speech_micros_per_m_chars, 1_000_000)

        answer = await self._run(ctx, body, chain, calls, bound, lambda p, c: _method(p, "speech", c.model)(c), settle_as)
        return answer, spoken[0]

    async def _run(
        self,
        ctx: CallContext,
        body: dict[str, Any],
        chain: list[ModelEntry],
        calls: list[tuple[ModelEntry, Call]],
        bound: int,
        invoke: Callable[[Provider, Call], Awaitable[Any]],
        settle_as: Callable[[ModelEntry, Any], tuple[Usage, Cost]],
    ) -> Answer:
        from aibroker.gateway.service import Answer

        gateway, primary = self.gateway, chain[0]
        ticket = await gateway.admit(ctx, primary, body)
        hold = await gateway.hold(ctx, primary, bound, ticket)
        try:
            done = await gateway.runner.run(calls, invoke, gateway._record_failure(ctx))
        except BaseException as exc:
            await gateway.release(ctx, hold, primary, exc)
            await gateway.admission.settle(ctx, ticket, primary, None)
            raise
        usage, cost = settle_as(done.model, done.value)
        op = gateway.settlement(ctx, hold, done.model, usage, cost, status="success", attempt=done.attempts, upstream_ms=done.upstream_ms)
        settled: Settled = await gateway.settle(op, hold)
        gateway.observe(ctx, done.model, usage, cost)
        await gateway.admission.settle(ctx, ticket, done.model, usage)
        billed = Cost(cost.provider_micros, settled.debited, cost.margin_bps)
        body_out = getattr(done.value, "body", None) or {}  # speech answers bytes, not a body
        return Answer(body_out, done.model, billed, settled.balance_after, usage, done.attempts, {**ticket.headers, "x-aibroker-cache": ctx.cache_status})

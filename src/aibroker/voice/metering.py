"""A session's money: rolling wallet holds ahead of use, one settlement per upstream response.

The session holds one increment (`increment_micros`, from AIBROKER_VOICE_INCREMENT_SECONDS
at the model's audio prices) from the process's wallet lease before it starts. Each
upstream response is settled from its usage event: debit and usage record (request_id =
the session id) in one transaction, against the session's hold, which then ends; the next
increment is held at once. While a response runs, the audio already heard and spoken is
estimated, and one more increment is held whenever the estimate nears what is held. When
the next increment cannot be held the session must stop (`OutOfBalance`).

A crash of the broker leaves the session's money in the process's lease row, which expires
AIBROKER_LEASE_TTL_SECONDS after its last renewal: the sweeper gives it back. Responses
already settled stay billed; nothing is debited twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aibroker.billing.leases import LocalHold
from aibroker.catalog.registry import ModelEntry
from aibroker.errors import InsufficientBalance
from aibroker.gateway.context import CallContext
from aibroker.voice import pricing
from aibroker.voice.pricing import RealtimeUsage

if TYPE_CHECKING:
    from aibroker.gateway.service import Gateway

log = logging.getLogger(__name__)


class OutOfBalance(Exception):
    """The wallet cannot hold the session's next increment."""

    def __init__(self, refusal: InsufficientBalance) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(slots=True)
class Totals:
    responses: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    cost_micros: int = 0


@dataclass
class Meter:
    gateway: Gateway
    ctx: CallContext
    model: ModelEntry
    increment: int
    holds: list[LocalHold] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    # What the running response has used so far (audio durations, transcript tokens).
    heard_ms: float = 0.0
    spoken_ms: float = 0.0
    spoken_text_tokens: int = 0
    in_response: bool = False

    @property
    def held(self) -> int:
        return sum(h.amount for h in self.holds)

    def _margin(self) -> int:
        return self.gateway.margin_for(self.ctx)

    def _cost(self, usage: RealtimeUsage) -> pricing.Cost:
        fee = self.gateway.billing.byok_fee_micros if self.model.provider in self.ctx.byok_keys else None
        return pricing.cost_of(self.model, usage, self._margin(), byok_fee_micros=fee)

    async def _hold(self, amount: int) -> None:
        try:
            hold = await self.gateway.reserve(self.ctx, amount)
        except InsufficientBalance as exc:
            raise OutOfBalance(exc) from exc
        if hold is not None:
            self.holds.append(hold)

    async def start(self) -> None:
        """The first increment; `OutOfBalance` when the wallet cannot hold it."""
        await self._hold(self.increment)

    def unbilled(self) -> int:
        """An estimate of what the running response has used (billed micros)."""
        if not (self.heard_ms or self.spoken_ms or self.spoken_text_tokens):
            return 0
        return self._cost(pricing.audio_usage(self.heard_ms, self.spoken_ms, self.spoken_text_tokens)).billed_micros

    async def ahead(self) -> None:
        """Hold one more increment when what is used nears what is held."""
        if self.gateway.leases is None:
            return
        while self.unbilled() + self.increment // 2 > self.held:
            await self._hold(self.increment)

    def _one_hold(self) -> LocalHold | None:
        """The session's holds as one reservation of their lease (they share it unless the
        lease was replaced meanwhile: a replaced lease's holds just go back)."""
        if not self.holds:
            return None
        first = self.holds[0]
        same = [h for h in self.holds if h.lease_id == first.lease_id]
        for other in self.holds:
            if other.lease_id != first.lease_id and self.gateway.leases is not None:
                self.gateway.leases.release(other)
        self.holds = []
        return LocalHold(first.organization_id, first.lease_id, sum(h.amount for h in same))

    async def bill(self, usage: RealtimeUsage, *, status: str = "success", hold_next: bool = True) -> int:
        """Settle one response (debit + usage record, one transaction); then hold the next
        increment (`OutOfBalance` when it cannot be held). Returns the micros debited."""
        # What the running response used is this bill's now, before any await: a session cut
        # while the settlement commits must not bill it again as a partial response.
        self.heard_ms = self.spoken_ms = 0.0
        self.spoken_text_tokens = 0
        self.in_response = False
        cost = self._cost(usage)
        if cost.billed_micros > self.held and self.gateway.leases is not None:
            try:  # the response cost more than was held: cover it before spending from the lease
                await self._hold(cost.billed_micros - self.held)
            except OutOfBalance:
                log.warning("a voice response cost more than its hold and the wallet could not cover the rest")
        hold = self._one_hold()
        op = self.gateway.settlement(
            self.ctx, hold, self.model, usage.as_usage(), cost, status=status, attempt=1, upstream_ms=0, streamed=True,
        )
        settled = await self.gateway.settle(op, hold)
        self.gateway.observe(self.ctx, self.model, usage.as_usage(), cost, status)
        t = self.totals
        t.responses += 1
        t.input_tokens += usage.input_tokens
        t.output_tokens += usage.output_tokens
        t.input_audio_tokens += usage.input_audio
        t.output_audio_tokens += usage.output_audio
        t.cost_micros += settled.debited
        if hold_next:
            await self._hold(self.increment)
        return settled.debited

    async def finish(self) -> None:
        """The session ended: a response cut before its usage event is billed from what was
        heard and spoken; every hold goes back."""
        try:
            if self.in_response and self.unbilled() > 0:
                await self.bill(pricing.audio_usage(self.heard_ms, self.spoken_ms, self.spoken_text_tokens),
                                status="partial", hold_next=False)
        finally:
            self.release()

    def release(self) -> None:
        if self.gateway.leases is not None:
            for hold in self.holds:
                self.gateway.leases.release(hold)
        self.holds = []

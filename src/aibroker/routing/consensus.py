"""Collaborative voting (seed 003's "votação colaborativa").

A feature in consensus mode sends the request to every active voting provider of its
resolved candidates, in parallel, each through the gateway (so each call is admitted,
held, billed and recorded like any other, under the request's one request id). Then:

    majority    the most common normalised answer (lowercase, no punctuation or spaces
                at the edges, inner whitespace collapsed); ties go to the greater total
                weight, then to the earlier candidate
    weighted    the normalised answer with the greatest total provider weight
    synthesize  a consensus model writes the final answer from the candidates (billed too)

The response is an OpenAI chat.completion whose message is the final answer; with
`"aibroker": {"include_votes": true}` it carries the votes. Streaming is not offered for
consensus features (400): the answer exists only once every vote is in.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from aibroker.errors import InvalidRequest, PermissionDenied
from aibroker.gateway.context import CallContext
from aibroker.gateway.http import CACHE_HEADER
from aibroker.gateway.service import Answer, Gateway
from aibroker.kit.ids import new_id
from aibroker.routing.router import NoAvailableProvider, RoutingRouter
from aibroker.routing.snapshot import Candidate, FeatureInfo

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)

SYNTHESIS_PROMPT = (
    "Several assistants answered the same request. Write the single best final answer, "
    "using what they agree on and correcting what is wrong. Answer with the final answer only."
)


def normalise(text: str) -> str:
    return " ".join(_PUNCTUATION.sub("", text.lower()).split())


def text_of(answer: Answer) -> str:
    choices = answer.body.get("choices") or [{}]
    return str((choices[0].get("message") or {}).get("content") or "")


@dataclass(slots=True)
class Vote:
    candidate: Candidate
    answer: Answer

    @property
    def text(self) -> str:
        return text_of(self.answer)

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.answer.model.provider, "model": self.answer.model.id, "answer": self.text,
            "weight": self.candidate.weight, "cost_micros": self.answer.cost.billed_micros,
        }


@dataclass(slots=True)
class Verdict:
    strategy: str
    votes: list[Vote]
    winner: Vote | None  # None when a consensus model synthesized the answer
    final: Answer  # the answer whose text is final: the winner's, or the synthesis
    answers: list[Answer]  # every billed call: the votes, then the synthesis


def consensus_feature(router: Any, feature: str | None) -> FeatureInfo | None:
    """The feature's settings when it runs in consensus mode (and has routing rows)."""
    if not isinstance(router, RoutingRouter) or not feature:
        return None
    snapshot = router.runtime.current()
    info = snapshot.features.get(feature)
    return info if info is not None and info.mode == "consensus" and snapshot.is_routed(feature) else None


def pick(votes: list[Vote], strategy: str) -> Vote:
    """The winning vote: majority by count (weight breaks ties) or by total weight."""
    tally: dict[str, list[float]] = {}
    first: dict[str, Vote] = {}
    for vote in votes:
        key = normalise(vote.text)
        count_weight = tally.setdefault(key, [0, 0.0])
        count_weight[0] += 1
        count_weight[1] += vote.candidate.weight
        first.setdefault(key, vote)
    order = list(first)  # candidate order breaks the last ties
    if strategy == "weighted":
        best = max(order, key=lambda k: (tally[k][1], tally[k][0], -order.index(k)))
    else:
        best = max(order, key=lambda k: (tally[k][0], tally[k][1], -order.index(k)))
    return first[best]


class ConsensusRunner:
    def __init__(self, gateway: Gateway, router: RoutingRouter) -> None:
        self.gateway = gateway
        self.router = router

    def _sub_context(self, ctx: CallContext) -> CallContext:
        # Same request id: every upstream call is recorded and billed under the one request.
        return CallContext(
            request_id=ctx.request_id, principal=ctx.principal, endpoint=ctx.endpoint, feature=ctx.feature,
            user_id=ctx.user_id, user_name=ctx.user_name, profile=ctx.profile, group=ctx.group,
            no_store=ctx.no_store,  # the caller's cache opt-out binds every vote and the synthesis
        )

    async def run(self, ctx: CallContext, body: dict[str, Any], feature: FeatureInfo) -> tuple[dict[str, Any], dict[str, str]]:
        """The OpenAI-shaped consensus answer and its response headers."""
        return self.respond(ctx, body, feature, await self.decide(ctx, body, feature))

    def respond(self, ctx: CallContext, body: dict[str, Any], feature: FeatureInfo, verdict: Verdict) -> tuple[dict[str, Any], dict[str, str]]:
        return self._response(
            ctx, body, feature, verdict.strategy, verdict.votes, verdict.winner,
            text_of(verdict.final), verdict.final.model.id, verdict.answers,
        )

    async def decide(self, ctx: CallContext, body: dict[str, Any], feature: FeatureInfo) -> Verdict:
        """Every voter's answer, then the final one (routes that answer in another shape use this)."""
        if body.get("stream"):
            raise InvalidRequest(
                f"The feature '{feature.slug}' answers by consensus, which cannot be streamed; send stream: false.",
                param="stream", code="consensus_stream_unsupported",
            )
        await self.gateway.load_byok(ctx)
        resolution = self.router.resolution(ctx)
        if not resolution.allowed:
            raise PermissionDenied(resolution.message, code=resolution.reason, extra={"feature": feature.slug})
        voters = [c for c in resolution.candidates if c.role == "voting"] or list(resolution.candidates)
        voters = [c for c in voters if self.router.usable(ctx, c.model, "chat") is not None]
        if not voters:
            raise NoAvailableProvider(f"No voting provider of the feature '{feature.slug}' is available.", code="no_available_provider")
        results = await asyncio.gather(
            *(self.gateway.chat(self._sub_context(ctx), {**body, "model": c.model}) for c in voters), return_exceptions=True
        )
        votes = [Vote(c, r) for c, r in zip(voters, results, strict=True) if isinstance(r, Answer)]
        if not votes:
            error = next(r for r in results if isinstance(r, BaseException))
            raise error
        strategy = feature.consensus_strategy or "majority"
        extra: list[Answer] = []
        if strategy == "synthesize":
            await self._synthesize(ctx, body, feature, votes, extra)
            winner, final = None, extra[-1]
        else:
            winner = pick(votes, strategy)
            final = winner.answer
        return Verdict(strategy, votes, winner, final, [v.answer for v in votes] + extra)

    async def _synthesize(
        self, ctx: CallContext, body: dict[str, Any], feature: FeatureInfo, votes: list[Vote], extra: list[Answer]
    ) -> tuple[str, str]:
        models = self.router.runtime.current().consensus_models(feature.slug)
        model = models[0] if models else votes[0].answer.model.id
        question = next((m.get("content") for m in reversed(body["messages"]) if m.get("role") == "user"), "")
        listing = "\n".join(f"Answer {i + 1}: {v.text}" for i, v in enumerate(votes))
        request = {
            "model": model,
            "messages": [
                {"role": "system", "content": SYNTHESIS_PROMPT},
                {"role": "user", "content": f"Request: {question}\n\n{listing}"},
            ],
        }
        for key in ("max_tokens", "max_completion_tokens", "temperature"):
            if body.get(key) is not None:
                request[key] = body[key]
        answer = await self.gateway.chat(self._sub_context(ctx), request)
        extra.append(answer)
        return text_of(answer), answer.model.id

    def _response(
        self, ctx: CallContext, body: dict[str, Any], feature: FeatureInfo, strategy: str, votes: list[Vote],
        winner: Vote | None, text: str, model: str, answers: list[Answer],
    ) -> tuple[dict[str, Any], dict[str, str]]:
        usage = {"prompt_tokens": sum(a.usage.input_tokens for a in answers),
                 "completion_tokens": sum(a.usage.output_tokens for a in answers)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        cost = sum(a.cost.billed_micros for a in answers)
        response: dict[str, Any] = {
            "id": new_id("chatcmpl"), "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": None}],
            "usage": usage,
        }
        if (body.get("aibroker") or {}).get("include_votes"):
            response["aibroker"] = {
                "mode": "consensus", "strategy": strategy, "feature": feature.slug,
                "winner": winner.as_dict() if winner else {"model": model, "answer": text},
                "votes": [v.as_dict() for v in votes], "cost_micros": cost,
            }
        balances = [a.balance_micros for a in answers if a.balance_micros is not None]
        headers = {
            "x-request-id": ctx.request_id, "x-aibroker-cost-micros": str(cost), "x-aibroker-mode": "consensus",
            "x-aibroker-provider": model.partition("/")[0], "x-aibroker-model": model,
            CACHE_HEADER: cache_outcome(answers),
        }
        if balances:
            headers["x-aibroker-balance-micros"] = str(min(balances))
        return response, headers


def cache_outcome(answers: list[Answer]) -> str:
    """The cache outcome of a consensus request, from its calls': theirs when they agree;
    miss when any call went upstream after looking the cache up; otherwise bypass."""
    outcomes = {a.extra_headers.get(CACHE_HEADER, "bypass") for a in answers}
    if len(outcomes) == 1:
        return outcomes.pop()
    return "miss" if "miss" in outcomes else "bypass"

"""POST /v1/completions: OpenAI's legacy text completions, served by any chat model.

Each prompt becomes a one-message chat request and runs the gateway pipeline (routed,
admitted, held, billed and recorded like /v1/chat/completions, endpoint "completions"); the
answer and its stream are turned back into `text_completion` objects. A list of prompts runs
one pipeline call per prompt (each its own hold, debit and usage record), its choices
indexed in order. A consensus feature (routing/consensus.py) answers each prompt by
collaborative voting, as on chat. Not served (400): n > 1, best_of > 1, echo, suffix, logprobs,
token-id prompts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aibroker.errors import InvalidRequest
from aibroker.gateway.formats.schemas import MAX_TOKENS, StreamOptions, openapi_body
from aibroker.gateway.http import JSONResponse, authenticate, cache_noted, read_json, services, sse, unless_disconnected, validate
from aibroker.gateway.request_context import call_context, requested_feature
from aibroker.kit.ids import new_id
from aibroker.routing.consensus import ConsensusRunner, consensus_feature
from aibroker.routing.snapshot import FeatureInfo
from aibroker.tenancy.auth import Principal

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for legacy completions
MAX_PROMPTS = 20  # each prompt is its own pipeline call
# Sampling and broker fields a chat request understands the same way.
PASSED = ("temperature", "top_p", "stop", "presence_penalty", "frequency_penalty", "seed", "user", "logit_bias",
          "feature", "cache", "user_name", "profile", "group", "stream_options", "aibroker")

Prompt = Annotated[str, Field(min_length=1)]


class CompletionRequest(BaseModel):
    """OpenAI's legacy completion request; aibroker adds `feature` and `cache` as on chat.
    Other fields are accepted and not sent on (the chat request is built from these)."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1, description="Any chat model of the catalog, e.g. `mock-chat`.")
    prompt: Prompt | Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)] = Field(
        description=f"A string or a list of up to {MAX_PROMPTS} strings (token-id prompts are not served).")
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS, description="Default 16, as OpenAI's.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=1, description="Only one choice per prompt is served.")
    best_of: int | None = Field(default=None, ge=1, le=1, description="Only 1 is served.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    echo: bool | None = Field(default=None, description="Only false is served.")
    suffix: None = Field(default=None, description="Not served (insertion): send null or leave it out.")
    logprobs: None = Field(default=None, description="Not served: send null or leave it out.")
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    logit_bias: dict[str, int] | None = None
    user: str | None = None
    feature: str | None = Field(default=None, description="aibroker: the feature (usage type) this call serves.")
    cache: bool | None = Field(default=None, description="aibroker: false bypasses the response cache.")
    profile: str | None = None
    group: str | None = None
    user_name: str | None = None
    aibroker: dict[str, Any] | None = Field(default=None, description='Consensus features: {"include_votes": true} adds the votes.')


def parse(body: dict[str, Any]) -> CompletionRequest:
    """The request, checked; what OpenAI defines but the broker does not serve gets a 400 naming it."""
    for name, what in (("suffix", "suffix (insertion)"), ("logprobs", "logprobs")):
        if body.get(name) is not None:
            raise InvalidRequest(f"{what} is not supported on /v1/completions; leave '{name}' out.", param=name,
                                 code="unsupported_parameter")
    if body.get("echo") is True:
        raise InvalidRequest("echo is not supported on /v1/completions; leave 'echo' out or false.", param="echo",
                             code="unsupported_parameter")
    return validate(CompletionRequest, body)


def chat_body(request: CompletionRequest, body: dict[str, Any], prompt: str) -> dict[str, Any]:
    """The chat request one prompt becomes."""
    chat: dict[str, Any] = {"model": request.model, "messages": [{"role": "user", "content": prompt}],
                            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS}
    chat.update({name: body[name] for name in PASSED if body.get(name) is not None})
    if request.stream:
        chat["stream"] = True
    return chat


def _head(chat: dict[str, Any], completion_id: str) -> dict[str, Any]:
    return {"id": completion_id, "object": "text_completion", "created": chat.get("created"), "model": chat.get("model")}


def _choice(choice: dict[str, Any], index: int) -> dict[str, Any]:
    message = choice.get("message") or {}
    return {"text": message.get("content") or "", "index": index, "logprobs": None, "finish_reason": choice.get("finish_reason")}


def to_completion(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """Chat completions (one per prompt) as one text_completion."""
    completion = _head(answers[0], new_id("cmpl"))
    completion["choices"] = [_choice((a.get("choices") or [{}])[0], i) for i, a in enumerate(answers)]
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for answer in answers:
        for key in usage:
            usage[key] += int((answer.get("usage") or {}).get(key) or 0)
    completion["usage"] = usage
    return completion


async def completion_chunks(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """chat.completion.chunk -> text_completion chunks: text deltas, the finish, then usage."""
    completion_id = new_id("cmpl")
    async for chunk in chunks:
        head = _head(chunk, completion_id)
        if not chunk.get("choices"):
            if chunk.get("usage"):  # include_usage: choices [] and the usage (with aibroker's cost)
                yield {**head, "choices": [], "usage": chunk["usage"], **({"aibroker": chunk["aibroker"]} if "aibroker" in chunk else {})}
            continue
        choice = chunk["choices"][0]
        text = (choice.get("delta") or {}).get("content") or ""
        if text or choice.get("finish_reason"):
            yield {**head, "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": choice.get("finish_reason")}]}


@router.post("/completions", openapi_extra=openapi_body(CompletionRequest))
async def create_completion(request: Request) -> Response:
    """Create a text completion (OpenAI's legacy format), plain or streamed (SSE of
    `text_completion` chunks; `stream_options.include_usage` adds the usage chunk with its
    cost). Served by translation to chat for every chat model (`mock-chat`, `gpt-4o-mini`, ...).
    `max_tokens` defaults to 16. A list of prompts gets one choice per prompt (each billed as
    its own call); `stream` takes one prompt. n, best_of > 1, echo, suffix and logprobs are
    not served (400). A consensus feature votes on each prompt as on chat (not streamed: 400
    `consensus_stream_unsupported`); `aibroker.include_votes` adds the votes."""
    principal = await authenticate(request)
    body = await read_json(request)
    completion = parse(body)
    prompts = [completion.prompt] if isinstance(completion.prompt, str) else completion.prompt
    if completion.stream and len(prompts) > 1:
        raise InvalidRequest("A streamed completion takes one prompt; send the others in their own requests.",
                             param="prompt")
    gateway = services(request).gateway
    voting = consensus_feature(gateway.router, requested_feature(request.headers, completion.feature, principal))
    if voting is not None:  # collaborative voting: every voting provider answers each prompt
        return await _by_consensus(request, principal, completion, body, prompts, voting)
    if completion.stream:
        chat = chat_body(completion, body, prompts[0])
        ctx = call_context(request, principal, "completions", chat)
        answer = await cache_noted(ctx, gateway.chat_stream(ctx, chat))
        headers = {"x-aibroker-provider": answer.model.provider, "x-aibroker-model": answer.model.id, **answer.headers}
        return StreamingResponse(sse(completion_chunks(answer.chunks)), media_type="text/event-stream", headers=headers)
    answers, headers, cost = [], {}, 0
    for prompt in prompts:
        chat = chat_body(completion, body, prompt)
        ctx = call_context(request, principal, "completions", chat)
        done = await unless_disconnected(request, gateway.chat(ctx, chat), ctx)
        answers.append(done.body)
        headers = done.headers(ctx.request_id)
        cost += done.cost.billed_micros
    headers["x-aibroker-cost-micros"] = str(cost)  # the sum over the prompts; the balance is after the last
    return JSONResponse(to_completion(answers), headers=headers)


async def _by_consensus(request: Request, principal: Principal, completion: CompletionRequest, body: dict[str, Any],
                        prompts: list[str], voting: FeatureInfo) -> Response:
    """Each prompt voted on by the feature's voting providers (each vote held, billed and
    recorded); the winners are the choices, the cost header the sum over every call."""
    gateway = services(request).gateway
    runner = ConsensusRunner(gateway, gateway.router)
    answers, votes, headers, cost = [], [], {}, 0
    for prompt in prompts:
        chat = chat_body(completion, body, prompt)
        ctx = call_context(request, principal, "completions", chat)
        result, headers = await unless_disconnected(request, runner.run(ctx, chat, voting))
        answers.append(result)
        votes.append(result.get("aibroker"))
        cost += int(headers.get("x-aibroker-cost-micros") or 0)
    completion_body = to_completion(answers)
    if votes[0] is not None:  # the request asked for the votes: as on chat for one prompt, per choice for several
        completion_body["aibroker"] = votes[0] if len(votes) == 1 else {"mode": "consensus", "choices": votes}
    headers["x-aibroker-cost-micros"] = str(cost)
    return JSONResponse(completion_body, headers=headers)

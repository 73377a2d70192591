"""OpenAI's Responses API: POST /v1/responses, GET / DELETE /v1/responses/{id},
GET /v1/responses/{id}/input_items.

A Responses request is translated to the pipeline's chat-shaped call (formats/responses.py),
so it is routed, admitted, held, billed and recorded exactly like /v1/chat/completions on any
provider; the answer and its stream are rendered back (formats/responses_render.py) and,
unless `store: false`, stored for the organization (formats/responses_store.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aibroker.ai.templates_apply import apply_template
from aibroker.errors import BrokerError
from aibroker.gateway.formats.responses import (
    ResponsesRequest,
    check_supported,
    normalize_input,
    to_chat,
)
from aibroker.gateway.formats.responses_render import Shell, StreamTranslator, render
from aibroker.gateway.formats.responses_replay import replay
from aibroker.gateway.formats.responses_store import ResponseStore, not_found
from aibroker.gateway.formats.schemas import openapi_body
from aibroker.gateway.http import (
    JSONResponse,
    authenticate,
    cache_noted,
    read_json,
    services,
    unless_disconnected,
    validate,
)
from aibroker.gateway.request_context import call_context
from aibroker.kit.ids import new_id
from aibroker.providers.base import usage_from_openai
from aibroker.routing.consensus import ConsensusRunner, consensus_feature
from aibroker.tenancy.auth import Principal

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


def store_of(request: Request) -> ResponseStore:
    """The process's store (app.py starts it with its purge task): its writes are batched."""
    svc = services(request)
    store = getattr(svc, "responses", None)
    if store is None:
        store = svc.responses = ResponseStore(svc.db.sessions, svc.settings.gateway.responses_retention_days)
    return store  # type: ignore[no-any-return]


async def _history(store: ResponseStore, principal: Principal, request: ResponsesRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(this request's input items, references resolved; the whole history to answer)."""
    org = principal.organization_id
    items = normalize_input(request.input)
    items = [await store.resolve(org, item["id"]) if item["type"] == "item_reference" else item for item in items]
    earlier = await store.chain(org, request.previous_response_id) if request.previous_response_id else []
    return items, [*earlier, *items]


@router.post("/responses", openapi_extra=openapi_body(ResponsesRequest))
async def create_response(request: Request) -> Response:
    """Create a model response (OpenAI's Responses API), plain or streamed (typed SSE events).

    Served for every provider by translation to the chat pipeline: same routing headers
    (`x-aibroker-feature`, `x-aibroker-profile`, ...), refusals (402, 429, 403), billing and
    usage records as /v1/chat/completions. Function tools, `tool_choice`, `text.format`
    (json_schema / json_object / text), `previous_response_id` and `item_reference` inputs
    work on any model. `store` (default true) keeps the response for the organization for
    AIBROKER_RESPONSES_RETENTION_DAYS. A consensus feature answers by collaborative voting
    (not streamed). Headers carry `x-aibroker-cost-micros` /
    `x-aibroker-balance-micros`; a stream's `response.completed` carries
    `response.aibroker: {cost_micros, balance_micros}`."""
    principal = await authenticate(request)
    raw = await apply_template(request, await read_json(request), "responses", principal)
    check_supported(raw)
    parsed = validate(ResponsesRequest, raw)
    ctx = call_context(request, principal, "responses", raw)
    store = store_of(request)
    items, history = await _history(store, principal, parsed)
    body = to_chat(parsed, raw, history)
    shell = Shell(new_id("resp"), raw)
    gateway = services(request).gateway
    voting = consensus_feature(gateway.router, ctx.feature)
    if voting is not None:  # collaborative voting (a stream is refused with 400, as on chat)
        result, headers = await unless_disconnected(request, ConsensusRunner(gateway, gateway.router).run(ctx, body, voting))
        response = render(shell, result, usage_from_openai(result.get("usage")))
        if "aibroker" in result:  # the votes, when the request asked for them
            response["aibroker"] = result["aibroker"]
        if parsed.store:
            await _save(store, principal, response, items, int(headers.get("x-aibroker-cost-micros") or 0), ctx.request_id)
        return JSONResponse(response, headers=headers)
    if parsed.stream:
        answer = await cache_noted(ctx, gateway.chat_stream(ctx, body))
        headers = {"x-aibroker-provider": answer.model.provider, "x-aibroker-model": answer.model.id, **answer.headers}
        events = _events(answer.chunks, StreamTranslator(shell), store if parsed.store else None, principal, items, ctx.request_id)
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    done = await unless_disconnected(request, gateway.chat(ctx, body), ctx)
    response = render(shell, done.body, done.usage)
    if parsed.store:
        await _save(store, principal, response, items, done.cost.billed_micros, ctx.request_id)
    return JSONResponse(response, headers=done.headers(ctx.request_id))


async def _save(store: ResponseStore, principal: Principal, response: dict[str, Any], items: list[dict[str, Any]],
                cost: int, request_id: str) -> None:
    """The answer is billed already: a failed write loses only the stored copy (logged)."""
    try:
        await store.save(principal.organization_id, response, items, cost_micros=cost, request_id=request_id)
    except Exception:
        log.exception("could not store a response", extra={"fields": {"response_id": response["id"]}})


def _frame(event: tuple[str, dict[str, Any]]) -> bytes:
    return b"event: " + event[0].encode() + b"\ndata: " + orjson.dumps(event[1]) + b"\n\n"


async def _events(chunks: AsyncIterator[dict[str, Any]], translator: StreamTranslator, store: ResponseStore | None,
                  principal: Principal, items: list[dict[str, Any]], request_id: str) -> AsyncIterator[bytes]:
    for event in translator.start():
        yield _frame(event)
    try:
        async for chunk in chunks:
            for event in translator.feed(chunk):
                yield _frame(event)
    except BrokerError as exc:  # the pipeline has recorded and billed what was generated
        for event in translator.failed(exc.body()):
            yield _frame(event)
        return
    closing, response = translator.finish()
    for event in closing:
        yield _frame(event)
    if store is not None:
        cost = int((response.get("aibroker") or {}).get("cost_micros") or 0)
        await _save(store, principal, response, items, cost, request_id)
    yield _frame(translator.terminal(response))


@router.get("/responses/{response_id}")
async def get_response(
    response_id: str,
    request: Request,
    stream: bool = Query(default=False, description="Replay the response as its typed SSE events."),
    starting_after: int | None = Query(default=None, ge=0, le=2**31 - 1,
                                       description="With `stream`: only the events numbered after this sequence_number."),
) -> Response:
    """A stored response of this organization (404 for an unknown, deleted, expired,
    `store: false` or another organization's id). With `stream=true`, the response replayed as
    the typed SSE events a stream of it sends (`response.created` ... `response.completed`),
    from `starting_after` + 1 when given."""
    principal = await authenticate(request)
    row = await store_of(request).require(principal.organization_id, response_id)
    if stream:
        frames = [_frame(event) for event in replay(row.body, starting_after)]
        return Response(b"".join(frames), media_type="text/event-stream", headers={"cache-control": "no-cache"})
    return JSONResponse(row.body)


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, request: Request) -> Response:
    """Delete a stored response; its items can no longer be referenced or chained."""
    principal = await authenticate(request)
    if not await store_of(request).delete(principal.organization_id, response_id):
        raise not_found(response_id)
    return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})


@router.get("/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    request: Request,
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = Query(default="desc"),
    after: str | None = Query(default=None, max_length=100, description="An item id: list the items after it."),
) -> Response:
    """The input items of a stored response (this request's input, references resolved),
    newest first unless `order=asc`; cursor `after` an item id."""
    principal = await authenticate(request)
    row = await store_of(request).require(principal.organization_id, response_id)
    items = list(row.input_items) if order == "asc" else list(reversed(row.input_items))
    if after is not None:
        position = next((i for i, item in enumerate(items) if item.get("id") == after), None)
        items = items[position + 1:] if position is not None else []
    page = items[:limit]
    return JSONResponse({
        "object": "list", "data": page, "has_more": len(items) > limit,
        "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None,
    })

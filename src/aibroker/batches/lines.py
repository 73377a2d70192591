"""One batch line through the gateway, exactly as a live request of its endpoint: parsed by
that endpoint's format module, routed, admitted, held, called with retries and fallbacks,
settled. A success's result row is written in its settlement's transaction (Settle.after),
so a line is either billed and answered, or neither: a resumed batch never bills it twice."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from aibroker.batches.ids import token_of
from aibroker.batches.jsonl import Line
from aibroker.billing.batch import Settled
from aibroker.db import upsert_insert
from aibroker.errors import BrokerError, InvalidRequest
from aibroker.gateway.context import CallContext
from aibroker.gateway.formats.responses import ResponsesRequest, check_supported, normalize_input, to_chat
from aibroker.gateway.formats.responses_render import Shell, render
from aibroker.gateway.formats.schemas import ChatCompletionRequest, EmbeddingRequest
from aibroker.gateway.http import validate
from aibroker.gateway.request_context import requested_feature
from aibroker.jobs.database import write_sessions
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id, new_request_id
from aibroker.models import Batch, BatchLine
from aibroker.providers.base import Usage
from aibroker.routing.consensus import consensus_feature
from aibroker.routing.router import routing_fields
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.routing_authority import authorize

log = logging.getLogger(__name__)

# The batch endpoint -> the pipeline's endpoint name (as the live route records it).
ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/responses": "responses", "/v1/embeddings": "embeddings"}

INSERT_LINE = BatchLine.__table__.insert()

Render = Callable[[dict[str, Any], Usage], dict[str, Any]]


class Throttled(Exception):
    """A rate limit or quota refused the line (429): the batch waits and runs it later, within
    its window, instead of failing it (its lines are not in a hurry; a live caller would retry)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"throttled for {retry_after} s")
        self.retry_after = retry_after


def _retry_after(exc: BrokerError) -> float:
    try:
        return max(1.0, float(exc.headers.get("Retry-After") or exc.headers.get("retry-after") or 1))
    except ValueError:
        return 1.0


def creator_of(principal: Principal) -> dict[str, Any]:
    """What a batch keeps of its creator, to run every line as that caller."""
    return {
        "api_key_id": principal.api_key_id, "user_id": principal.user_id, "default_feature": principal.default_feature,
        "role": principal.role, "via": principal.via, "profile": principal.profile,
        "allowed_profiles": sorted(principal.allowed_profiles), "allowed_groups": sorted(principal.allowed_groups),
        "permissions": sorted(principal.permissions),
    }


async def principal_of(services: Any, batch: Batch) -> Principal:
    """The creator again, on the organization's current plan and margin."""
    base = await services.auth.principal_for_org(batch.organization_id, admin=False)
    saved = batch.creator or {}
    return dataclasses.replace(
        base, api_key_id=saved.get("api_key_id"), user_id=saved.get("user_id"), default_feature=saved.get("default_feature"),
        role=saved.get("role"), via=saved.get("via") or "api_key", profile=saved.get("profile"),
        allowed_profiles=frozenset(saved.get("allowed_profiles") or ()), allowed_groups=frozenset(saved.get("allowed_groups") or ()),
        permissions=frozenset(saved.get("permissions") or base.permissions),
    )


def line_id(batch_id: str, index: int) -> str:
    return f"batch_req_{token_of(batch_id)}_{index}"


class LineRunner:
    def __init__(self, services: Any, batch: Batch, principal: Principal, discount_bps: int) -> None:
        self.services = services
        self.gateway = services.gateway
        self.batch_id = batch.id
        self.endpoint = batch.endpoint
        self.principal = principal
        self.discount_bps = discount_bps
        self.writes = write_sessions(services.db)

    async def run(self, line: Line) -> None:
        """Run the line to a result row; a refused or failed line lands as its error, and the
        batch goes on. Cancellation (the job stopping) and a rate limit (Throttled) leave no
        row: the line runs again."""
        request_id = new_request_id()
        try:
            ctx = self._context(line, request_id)
            await self._call(ctx, line)
        except asyncio.CancelledError:
            raise
        except BrokerError as exc:
            if exc.status_code == 429:
                raise Throttled(_retry_after(exc)) from exc
            await self.record_failure(line, request_id, exc.status_code, exc.body())
        except Exception as exc:
            log.exception("batch line failed", extra={"fields": {"batch": self.batch_id, "line": line.index}})
            body = {"error": {"message": f"The request failed inside the broker ({type(exc).__name__}).",
                              "type": "server_error", "param": None, "code": None}}
            await self.record_failure(line, request_id, 500, body)

    def _context(self, line: Line, request_id: str) -> CallContext:
        body, principal = line.body, self.principal
        profile, group = routing_fields({}, body)
        ctx = CallContext(
            request_id=request_id, principal=principal, endpoint=ENDPOINTS[self.endpoint],
            feature=requested_feature({}, body.get("feature"), principal),
            user_id=body.get("user") if isinstance(body.get("user"), str) else principal.user_id,
            user_name=body.get("user_name") if isinstance(body.get("user_name"), str) else None,
            no_store=body.get("cache") is False,
            batch_id=self.batch_id, batch_custom_id=line.custom_id, discount_bps=self.discount_bps,
        )
        ctx.profile, ctx.group = authorize(principal, profile, group, self.services.settings.accounts.role_profiles)
        return ctx

    async def _call(self, ctx: CallContext, line: Line) -> None:
        body = line.body
        if body.get("stream"):
            raise InvalidRequest("A batch request cannot be streamed ('stream' must be false).", param="stream")
        if self.endpoint == "/v1/embeddings":
            validate(EmbeddingRequest, body)
            ctx.on_settle = self._on_settle(line, ctx.request_id, lambda answer, _usage: answer)
            await self.gateway.embed(ctx, body)
            return
        if consensus_feature(self.gateway.router, ctx.feature) is not None:
            raise InvalidRequest(f"The feature '{ctx.feature}' answers by collaborative voting, which batches do not run.",
                                 param="feature", code="unsupported_in_batch")
        if self.endpoint == "/v1/chat/completions":
            validate(ChatCompletionRequest, body)
            ctx.on_settle = self._on_settle(line, ctx.request_id, lambda answer, _usage: answer)
            await self.gateway.chat(ctx, body)
            return
        check_supported(body)
        parsed = validate(ResponsesRequest, body)
        items = normalize_input(parsed.input)
        if parsed.previous_response_id or any(item["type"] == "item_reference" for item in items):
            raise InvalidRequest("Batch requests stand alone: 'previous_response_id' and item references are not served.",
                                 param="previous_response_id", code="unsupported_in_batch")
        shell = Shell(new_id("resp"), {**body, "store": False})
        ctx.on_settle = self._on_settle(line, ctx.request_id, lambda answer, usage: render(shell, answer, usage))
        await self.gateway.chat(ctx, to_chat(parsed, body, items))

    def _on_settle(self, line: Line, request_id: str, shape: Render) -> Callable[..., Callable[[Connection, Settled], None]]:
        batch_id = self.batch_id

        def settle_hook(answer: dict[str, Any], usage: Usage, record: dict[str, Any]) -> Callable[[Connection, Settled], None]:
            row = {
                "id": line_id(batch_id, line.index), "batch_id": batch_id, "line_index": line.index,
                "custom_id": line.custom_id, "ok": True, "status_code": 200, "request_id": request_id,
                "body": shape(answer, usage), "error": None, "usage_record_id": record["id"],
                "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens, "cached_tokens": usage.cached_tokens,
                "created_at": utcnow(),
            }

            def after(conn: Connection, _settled: Settled) -> None:
                # A plain INSERT: should this line ever have a row already, the unique key fails
                # the settlement, and nothing is charged a second time.
                conn.execute(INSERT_LINE, row)  # one compiled statement: this runs under the writer's lock

            return after

        return settle_hook

    async def record_failure(self, line: Line, request_id: str | None, status: int | None, body: dict[str, Any] | None,
                             error: dict[str, Any] | None = None) -> None:
        """A line that ends without a charge: refused, failed, or never run (`error` then)."""
        async with self.writes() as session:
            await write_line_outcome(session, self.batch_id, line, request_id, status, body, error)
            await session.commit()


async def write_line_outcome(session: Any, batch_id: str, line: Line, request_id: str | None, status: int | None,
                             body: dict[str, Any] | None, error: dict[str, Any] | None = None) -> None:
    stmt = upsert_insert(session, BatchLine).values(
        id=line_id(batch_id, line.index), batch_id=batch_id, line_index=line.index, custom_id=line.custom_id, ok=False,
        status_code=status, request_id=request_id, body=body, error=error, usage_record_id=None,
        input_tokens=0, output_tokens=0, cached_tokens=0, created_at=utcnow(),
    )
    await session.execute(stmt.on_conflict_do_nothing())  # written already (a resumed run): keep the first

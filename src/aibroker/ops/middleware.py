"""A pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path): every response
carries x-request-id, and logs made while serving a request carry it too."""

from __future__ import annotations

import re

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aibroker.gateway.http import AI_ROUTES, CACHE_HEADER
from aibroker.kit.ids import new_request_id
from aibroker.ops.logging import request_id_var, tag_request_id
from aibroker.ops.metrics import IN_FLIGHT

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_NUL_BODY = orjson.dumps({"error": {
    "message": "The URL contains a NUL character (%00); no path or query parameter accepts one.",
    "type": "invalid_request_error", "param": None, "code": "nul_character",
}})


def _nul_refused(scope: Scope) -> Response:
    headers = {CACHE_HEADER: "bypass"} if (scope.get("method"), scope.get("path")) in AI_ROUTES else None
    return Response(_NUL_BODY, status_code=400, media_type="application/json", headers=headers)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        rid = incoming if _SAFE_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        raw = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", raw))
                message["headers"] = headers
            await send(message)

        IN_FLIGHT.inc()
        try:
            if b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", ""):
                # No parameter accepts a NUL, and PostgreSQL cannot even compare text with one
                # (a 500 wherever it reached a query): refused once, here, for every route.
                await _nul_refused(scope)(scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Starlette's error handler and the server log this exception outside this
            # middleware, after request_id_var is reset: the exception carries the id there.
            tag_request_id(exc, rid)
            raise
        finally:
            IN_FLIGHT.dec()
            request_id_var.reset(token)

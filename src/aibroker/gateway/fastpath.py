"""The hottest AI routes served straight from ASGI, ahead of FastAPI's router.

Routing through FastAPI (router matching across included routers, dependency solving, an
exit stack per request) costs more per request than most of the broker's own pipeline,
and these routes use none of it: they read the body themselves and raise BrokerError. The
routes stay registered with FastAPI too, so the OpenAPI docs and every other behaviour
are unchanged; this middleware only answers them first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from aibroker.errors import BrokerError, unstorable_value
from aibroker.gateway.http import CACHE_HEADER, JSONResponse, error_headers
from aibroker.ops.db_errors import database_busy

log = logging.getLogger("aibroker.errors")

Handler = Callable[[Request], Awaitable[Response]]


class FastPath:
    def __init__(self, app: ASGIApp, *, routes: dict[tuple[str, str], Handler], owner: ASGIApp) -> None:
        self.app = app
        self.routes = routes
        self.owner = owner  # the FastAPI app: handlers reach the services through request.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.owner
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except BrokerError as exc:
            response = JSONResponse(exc.body(), status_code=exc.status_code, headers=_with_request_id(scope, error_headers(exc)))
        except Exception as exc:
            if (busy := database_busy(exc)) is not None:  # a saturated database: 503, not 500
                headers = _with_request_id(scope, error_headers(busy))
                await JSONResponse(busy.body(), status_code=busy.status_code, headers=headers)(scope, receive, send)
                return
            if (bad := unstorable_value(exc)) is not None:  # a value the database refused: the client's 400
                await JSONResponse(bad.body(), status_code=400, headers=_with_request_id(scope, error_headers(bad)))(scope, receive, send)
                return
            log.exception("unhandled error")
            body = {"error": {"message": "Internal error; the request id identifies it in the logs.",
                              "type": "server_error", "param": None, "code": None}}
            response = JSONResponse(body, status_code=500, headers=_with_request_id(scope, {CACHE_HEADER: "bypass"}))
        await response(scope, receive, send)


def _with_request_id(scope: Scope, headers: dict[str, str]) -> dict[str, str]:
    request_id = (scope.get("state") or {}).get("request_id")
    return {**headers, "x-request-id": request_id} if request_id else headers

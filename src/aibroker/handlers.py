"""The one place errors become HTTP responses: OpenAI-style {"error": {...}} bodies."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from aibroker.errors import BrokerError, unstorable_value
from aibroker.gateway.http import AI_ROUTES, CACHE_HEADER, JSONResponse, describe_validation_error

log = logging.getLogger("aibroker.errors")


def _render(request: Request, status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    scope = request.scope
    state = scope.get("state") or {}
    if "request_id" in state:
        headers["x-request-id"] = state["request_id"]
    if (scope.get("method"), scope.get("path")) in AI_ROUTES:
        headers.setdefault(CACHE_HEADER, "bypass")  # an AI route's every answer names the cache outcome
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(BrokerError)
    async def broker_error(request: Request, exc: BrokerError) -> Response:
        return _render(request, exc.status_code, exc.body(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        # 422 is for payload shape on the platform API; the OpenAI routes answer 400 like OpenAI.
        status = 400 if request.url.path.startswith("/v1/") else 422
        message = describe_validation_error(exc)  # type: ignore[arg-type]
        return _render(request, status, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return _render(request, exc.status_code, {"error": {"message": str(exc.detail), "type": kind, "param": None, "code": None}})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # A value the database refuses (a NUL in text on PostgreSQL, an out-of-range number)
        # that no schema bound caught is still the client's 400, not our 500.
        if (bad := unstorable_value(exc)) is not None:
            return _render(request, bad.status_code, bad.body())
        log.exception("unhandled error")
        return _render(request, 500, {"error": {"message": "Internal error; the request id identifies it in the logs.", "type": "server_error", "param": None, "code": None}})

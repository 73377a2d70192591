"""Console errors: HTML pages for people, JSON for the console's fetch endpoints (/console/api).

Signed out -> a redirect to the sign-in page (401 for fetch); a weaker role -> 403; another
organization's id -> 404. A service's BrokerError raised under /console renders as a page too."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from aibroker.errors import BrokerError

API_PREFIX = "/console/api"


class ConsoleError(Exception):
    status_code = 400
    title = "Something is wrong with this request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SignedOut(ConsoleError):
    status_code = 401
    title = "Sign in first"


class Forbidden(ConsoleError):
    status_code = 403
    title = "Not allowed"


class PageNotFound(ConsoleError):
    status_code = 404
    title = "Not found"


def _is_page(request: Request) -> bool:
    path = request.url.path
    return (path == "/console" or path.startswith("/console/")) and not path.startswith(API_PREFIX)


def _json(status: int, message: str, kind: str) -> Response:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=status)


def _page(request: Request, status: int, title: str, message: str) -> Response:
    from aibroker.web.render import render

    return render(request, "error.html", status_code=status, title=title, message=message)


async def console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    if not _is_page(request):
        kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}.get(exc.status_code, "invalid_request_error")
        return _json(exc.status_code, exc.message, kind)
    if isinstance(exc, SignedOut):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/console/login?next={quote(target, safe='')}", status_code=303)
    return _page(request, exc.status_code, exc.title, exc.message)


def install(app: FastAPI) -> None:
    """Console errors, and HTML for the API's own errors when they happen under /console."""
    app.add_exception_handler(ConsoleError, console_error)
    for kind in (BrokerError, RequestValidationError, HTTPException):
        app.add_exception_handler(kind, _wrap(app.exception_handlers.get(kind)))


def _wrap(original):  # type: ignore[no-untyped-def]
    async def handler(request: Request, exc: Exception) -> Response:
        if not _is_page(request) or original is None:
            return await original(request, exc)
        if isinstance(exc, BrokerError):
            status, message = exc.status_code, exc.message
        elif isinstance(exc, HTTPException):
            status, message = exc.status_code, str(exc.detail)
        else:
            status, message = 400, "The form is incomplete or has a value of the wrong kind."
        if status >= 500:
            return await original(request, exc)
        title = {401: "Sign in first", 403: "Not allowed", 404: "Not found", 429: "Too many attempts"}.get(status, "Please check the request")
        return _page(request, status, title, message)

    return handler

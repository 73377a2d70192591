"""CSRF tokens: every state-changing form or fetch carries one, tied to the session.

Signed in, the token is an HMAC of the session id (nothing to store; a new session, a new
token). Before sign-in, the sign-in form uses a double-submit cookie, so a third-party site
cannot sign a browser in to an account of its choosing. Missing or wrong -> 403."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

from aibroker.web.errors import Forbidden

FIELD = "csrf_token"  # the hidden form field
HEADER = "x-csrf-token"  # for fetch()
PRE_COOKIE = "aibroker_console_pre"


def token_for(secret: str, session_id: str) -> str:
    return hmac.new(("aibroker-console-csrf:" + secret).encode(), session_id.encode(), hashlib.sha256).hexdigest()


def new_pre_session_value() -> str:
    return secrets.token_urlsafe(24)


async def submitted(request: Request) -> str:
    """The token the request carries: the header, else the form field."""
    header = request.headers.get(HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette keeps the parsed form: the route reads it again for free
        value = form.get(FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def verify(request: Request, expected: str) -> None:
    given = await submitted(request)
    if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("The form's security token is missing or out of date: reload the page and try again.")

"""Flash messages: one-shot notices ("Key revoked.") carried to the next page in a signed cookie."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "aibroker_flash"
KINDS = ("ok", "error")


def _sign(secret: str, payload: bytes) -> str:
    return hmac.new(("aibroker-console-flash:" + secret).encode(), payload, hashlib.sha256).hexdigest()[:32]


def flash(request: Request, response: Response, message: str, kind: str = "ok") -> Response:
    """Show `message` on the next rendered page (the POST-redirect-GET pattern)."""
    secret = request.app.state.settings.server.secret_key
    payload = base64.urlsafe_b64encode(json.dumps({"m": message[:500], "k": kind if kind in KINDS else "ok"}).encode())
    response.set_cookie(COOKIE, f"{payload.decode()}.{_sign(secret, payload)}", max_age=120, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/console")
    return response


def take(request: Request) -> list[dict[str, str]]:
    """The pending messages (none when the cookie is absent or forged)."""
    raw = request.cookies.get(COOKIE)
    if not raw or "." not in raw:
        return []
    payload, signature = raw.rsplit(".", 1)
    secret = request.app.state.settings.server.secret_key
    if not hmac.compare_digest(signature, _sign(secret, payload.encode())):
        return []
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
        return [{"message": str(data["m"]), "kind": str(data["k"])}]
    except (ValueError, KeyError, TypeError):
        return []

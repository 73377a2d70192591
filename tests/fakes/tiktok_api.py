"""Fake TikTok Business Messaging API over real HTTP: POST /open_api/v1.3/business/message/send/
with the `Access-Token` header; answers TikTok's envelope {"code", "message", "data"} where a
non-zero code is an error even with HTTP 200."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.meta_graph import Reply, ThreadedFake

PREFIX = "/open_api/v1.3"


def tiktok_error(code: int, message: str, status: int = 200) -> Reply:
    """e.g. tiktok_error(40064, "Sending too fast") or tiktok_error(40105, "Access token is invalid")."""
    return Reply(status, {"code": code, "message": message, "request_id": "fake-request", "data": {}})


class FakeTikTokAPI(ThreadedFake):
    name = "fake-tiktok"

    def __init__(self) -> None:
        super().__init__([Route(f"{PREFIX}/business/message/send/", self._send, methods=["POST"])])
        self.tokens: dict[str, str] = {}  # business id -> access token

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    def sent(self):  # type: ignore[no-untyped-def]
        return list(self.requests)

    async def _send(self, request: Request) -> Response:
        body, fault = await self._record(request)
        if fault is not None:
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        if not isinstance(body, dict):
            return JSONResponse(tiktok_error(40002, "Invalid JSON").body)
        token = request.headers.get("access-token")
        if not token or self.tokens.get(str(body.get("business_id"))) != token:
            return JSONResponse(tiktok_error(40105, "Access token is invalid").body)
        if body.get("recipient_type") != "CONVERSATION" or not body.get("recipient") or body.get("message_type") != "TEXT":
            return JSONResponse(tiktok_error(40002, "Invalid parameters").body)
        n = self.next_id()
        return JSONResponse({"code": 0, "message": "OK", "request_id": f"req{n}", "data": {"message": {"message_id": f"tt_msg_{n:06d}"}}})

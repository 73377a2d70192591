"""Fake Meta Graph API over real HTTP: the WhatsApp Cloud API and Messenger / Instagram Send API
(POST /{version}/{phone-number-id|page-id|me}/messages), the Messenger / Instagram User Profile
API (GET /{version}/{PSID|IGSID}?fields=...&access_token=...: only the asked fields, plus `id`),
with Meta's error envelope and injectable faults. `ThreadedFake` (also used by the fake TikTok API) runs a Starlette app on
a free port in a thread."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

VERSION = "v21.0"


@dataclass(frozen=True)
class Reply:
    """One scripted answer instead of the normal one."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class ThreadedFake:
    """Start/stop a Starlette app on 127.0.0.1:<free port> in a daemon thread."""

    name = "fake"

    def __init__(self, routes: list[Route]) -> None:
        self.app = Starlette(routes=routes)
        self.port = 0
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()

    def next_id(self) -> int:
        return next(self._ids)

    async def _record(self, request: Request) -> tuple[Any, Reply | None]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        with self._lock:
            self.requests.append(Recorded(request.url.path, dict(request.query_params), {k.lower(): v for k, v in request.headers.items()}, body))
            fault = self._script.popleft() if self._script else None
        return body, fault

    def start(self, timeout: float = 10.0) -> ThreadedFake:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> ThreadedFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def graph_error(status: int, code: int, message: str, subcode: int | None = None) -> Reply:
    """Meta's error envelope, e.g. graph_error(400, 190, "Invalid OAuth access token.")."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfFake"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return Reply(status, {"error": error})


class FakeGraphAPI(ThreadedFake):
    """Accepts sends for the tokens it was told about: `tokens` maps a phone-number id or page id
    (or "me") to its access token. WhatsApp tokens come as a Bearer header, Page tokens as the
    `access_token` query parameter, as Meta takes them."""

    name = "fake-graph"

    def __init__(self) -> None:
        super().__init__([
            Route(f"/{VERSION}/{{node}}/messages", self._messages, methods=["POST"]),
            Route(f"/{VERSION}/{{user}}", self._profile, methods=["GET"]),
        ])
        self.tokens: dict[str, str] = {}
        self.profiles: dict[str, dict[str, Any] | Reply] = {}  # PSID / IGSID -> its profile fields (or a scripted answer)

    def profile_lookups(self) -> list[Recorded]:
        return [r for r in self.requests if not r.path.endswith("/messages")]

    async def _profile(self, request: Request) -> Response:
        _, fault = await self._record(request)
        if fault is not None:
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        token = request.query_params.get("access_token")
        if not token or token not in self.tokens.values():
            return JSONResponse(graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token").body, status_code=401)
        user = request.path_params["user"]
        profile = self.profiles.get(user)
        if profile is None:
            message = f"Unsupported get request. Object with ID '{user}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
            error = graph_error(400, 100, message, subcode=33)
            error.body["error"]["type"] = "GraphMethodException"
            return JSONResponse(error.body, status_code=400)
        if isinstance(profile, Reply):
            return JSONResponse(profile.body, status_code=profile.status, headers=profile.headers)
        fields = [f.strip() for f in (request.query_params.get("fields") or "").split(",") if f.strip()]
        return JSONResponse({**{f: profile[f] for f in fields if f in profile}, "id": user})

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{VERSION}"

    def sent(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/messages")]

    async def _messages(self, request: Request) -> Response:
        body, fault = await self._record(request)
        if fault is not None:
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        node = request.path_params["node"]
        if not isinstance(body, dict):
            return JSONResponse(graph_error(400, 100, "Invalid parameter").body, status_code=400)
        whatsapp = body.get("messaging_product") == "whatsapp"
        token = (request.headers.get("authorization") or "").removeprefix("Bearer ") if whatsapp else request.query_params.get("access_token")
        if not token or self.tokens.get(node) != token:
            return JSONResponse(graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token").body, status_code=401)
        n = self.next_id()
        if whatsapp:
            if body.get("type") not in ("text", "template") or not body.get("to"):
                return JSONResponse(graph_error(400, 100, "Invalid parameter").body, status_code=400)
            return JSONResponse({"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                                 "messages": [{"id": f"wamid.FAKE{n:06d}"}]})
        recipient = (body.get("recipient") or {}).get("id")
        if not recipient or not (body.get("message") or {}).get("text"):
            return JSONResponse(graph_error(400, 100, "Invalid parameter").body, status_code=400)
        if body.get("messaging_type") == "MESSAGE_TAG" and body.get("tag") != "HUMAN_AGENT":
            return JSONResponse(graph_error(400, 100, "Invalid tag").body, status_code=400)
        return JSONResponse({"recipient_id": recipient, "message_id": f"m_FAKE{n:06d}"})

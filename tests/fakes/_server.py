"""Shared plumbing of the fake upstreams: a threaded uvicorn on a free port, a request log,
scripted faults (the `Fault` of openai_upstream), hangs and stream cuts."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["FakeServer", "Fault", "RecordedRequest", "StreamFault", "StreamCut", "count_words", "split_chunks"]

HANG_LIMIT_S = 60.0


@dataclass(frozen=True)
class Fault:
    """One injected behaviour; unset fields mean "behave normally".

    Applied in order: latency, hang, status, malformed_json, cut_after_chunks (streams only).
    """

    status: int | None = None
    retry_after: float | None = None  # sent on error responses only
    latency: float | None = None
    hang: bool = False
    cut_after_chunks: int | None = None
    malformed_json: bool = False
    message: str | None = None  # overrides the default error message
    code: str | None = None  # overrides the default error code


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # keys lowercased
    body: Any  # parsed JSON, or None if absent/invalid


class _StreamCut(Exception):
    """Raised mid-stream so uvicorn drops the connection without [DONE]."""


class _QuietStreamCuts(logging.Filter):
    # Injected cuts are expected; keep them out of uvicorn's error log.
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _StreamCut))


_QUIET_FILTER = _QuietStreamCuts()


StreamCut = _StreamCut  # raise it mid-stream: uvicorn drops the connection (quietly)


@dataclass(frozen=True)
class StreamFault(Fault):
    """A Fault that can also send the provider's in-stream error event after N events."""

    error_event_after: int | None = None
    error_type: str | None = None  # provider-specific error kind for that event


def count_words(text: str) -> int:
    return len(text.split())


def split_chunks(text: str) -> list[str]:
    """Word pieces (" word") whose concatenation is exactly `text`."""
    return re.findall(r"\s*\S+|\s+$", text)


class FakeServer:
    """Subclasses give routes, `_check_auth` and `_error` (their wire format's error body)."""

    thread_name = "fake-upstream"

    def __init__(self, routes: list[Route]) -> None:
        self.default_fault: Fault | None = None
        self._script: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.port = 0
        self.app = Starlette(routes=routes)

    # -- test-facing API --

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def script(self, faults: Iterable[Fault]) -> None:
        """Queue faults, consumed one per (authenticated) request, FIFO."""
        with self._lock:
            self._script.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self.default_fault = None

    # -- lifecycle --

    def start(self, timeout: float = 10.0) -> Any:
        logging.getLogger("uvicorn.error").addFilter(_QUIET_FILTER)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.thread_name} failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- hooks for subclasses --

    def _check_auth(self, request: Request) -> Response | None:
        return None

    def _error(self, status: int, message: str | None = None, code: str | None = None,
               retry_after: float | None = None) -> Response:
        raise NotImplementedError

    malformed_body = b'{"id": "broken", "content": [{"type": '

    # -- request plumbing --

    async def _admit(self, request: Request) -> tuple[Any, Fault | None, Response | None]:
        """Record, authenticate, apply the next fault. Returns (body, fault, early_response)."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(request.method, request.url.path, dict(request.headers), body)
        with self._lock:
            self._requests.append(record)
        if (denied := self._check_auth(request)) is not None:
            return body, None, denied
        with self._lock:
            fault = self._script.popleft() if self._script else self.default_fault
        if fault is None:
            return body, None, None
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.hang:
            deadline = time.monotonic() + HANG_LIMIT_S
            while time.monotonic() < deadline and not self._stopping.is_set():
                if await request.is_disconnected():
                    break
                await asyncio.sleep(0.02)
        if fault.status is not None:
            return body, fault, self._error(fault.status, fault.message, fault.code, fault.retry_after)
        if fault.malformed_json and not self._is_stream(request, body):
            return body, fault, Response(self.malformed_body, media_type="application/json")
        return body, fault, None

    def _is_stream(self, request: Request, body: Any) -> bool:
        return isinstance(body, dict) and bool(body.get("stream"))

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids)}"

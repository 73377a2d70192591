"""An unhandled error's 500 says "the request id identifies it in the logs" (issue 18, item
15): every log line the error produces carries that request id, whichever path it took."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import orjson
import pytest

from aibroker.ops.logging import JsonFormatter
from tests.support.broker import BrokerServer


class Lines(logging.Handler):
    """Log lines exactly as production writes them (JsonFormatter), parsed back."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    # the root logger (ours) and uvicorn's own, which the test server does not propagate
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def server(database_url, broker_env, monkeypatch) -> Iterator[BrokerServer]:
    for name, value in {**broker_env, "AIBROKER_DATABASE_URL": database_url}.items():
        monkeypatch.setenv(name, value)
    broker = BrokerServer(database_url)

    async def explode() -> None:
        raise RuntimeError("the test route fails on purpose")

    broker.app.add_api_route("/test/explode", explode, methods=["GET"])
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _error_lines_of(lines: Lines, request_id: str) -> tuple[list[dict], list[dict]]:
    errors = [line for line in lines.lines if line.get("exception")]
    return errors, [line for line in errors if line.get("request_id") != request_id]


def test_an_unhandled_error_on_a_route_is_logged_with_its_request_id(server, lines):
    with server.client() as client:
        response = client.get("/test/explode")
    assert response.status_code == 500
    assert "request id" in response.json()["error"]["message"]
    rid = response.headers["x-request-id"]
    # the 500 handler's line, and the server's own once the exception leaves the app (it
    # may come just after the response: wait for it)
    deadline = time.monotonic() + 5
    while {line["logger"] for line in lines.lines} < {"aibroker.errors", "uvicorn.error"} and time.monotonic() < deadline:
        time.sleep(0.01)
    errors, untagged = _error_lines_of(lines, rid)
    assert {"aibroker.errors", "uvicorn.error"} <= {line["logger"] for line in errors}
    assert untagged == []


def test_an_unhandled_error_on_the_fast_path_is_logged_with_its_request_id(server, lines):
    org = server.create_org("Faulty")

    async def broken(ctx, body):  # an injected fault inside the pipeline
        raise RuntimeError("the pipeline fails on purpose")

    server.services.gateway.embed = broken
    with server.client(org["api_key"]) as client:
        response = client.post("/v1/embeddings", json={"model": "openai/text-embedding-3-small", "input": "x"},
                               headers={"x-request-id": "req-chosen-by-client"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-chosen-by-client"
    errors, untagged = _error_lines_of(lines, "req-chosen-by-client")
    assert errors and untagged == []

"""Helpers of the batch tests: JSONL input files, driving the job queue, reading results."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import httpx

from tests.support.broker import ADMIN_TOKEN

TERMINAL = {"completed", "failed", "expired", "cancelled"}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def chat_line(custom_id: str, text: str, model: str = "mock-chat", **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": text}], **body}}


def embedding_line(custom_id: str, text: str, model: str = "mock-embed") -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings", "body": {"model": model, "input": text}}


def responses_line(custom_id: str, text: str, model: str = "mock-chat") -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/responses", "body": {"model": model, "input": text}}


def upload(client: Any, lines: list[dict[str, Any]] | bytes, name: str = "input.jsonl") -> Any:
    data = lines if isinstance(lines, bytes) else jsonl(lines)
    return client.files.create(file=(name, io.BytesIO(data)), purpose="batch")


def process(url: str, max_jobs: int = 20) -> dict[str, Any]:
    """One cron call of POST /api/jobs/process."""
    response = httpx.post(url + "/api/jobs/process", json={"max_jobs": max_jobs, "concurrency": 2},
                          headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def run_to_end(url: str, client: Any, batch_id: str, timeout: float = 60.0) -> Any:
    """Call the cron endpoint until the batch reaches a terminal status (polled, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        process(url)


def read_jsonl(client: Any, file_id: str | None) -> dict[str, dict[str, Any]]:
    """The lines of an output or error file, by custom_id (their order is not guaranteed)."""
    if file_id is None:
        return {}
    text = client.files.content(file_id).text
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    by_id = {row["custom_id"]: row for row in rows}
    assert len(by_id) == len(rows), "a custom_id appears twice"
    return by_id

"""What an attacker or a broken client sends to /v1/files and /v1/batches: clear 4xx, never a 500."""

from __future__ import annotations

import io
import socket

import httpx
import openai
import pytest

from tests.batches.support import chat_line, upload


@pytest.fixture
def http(broker, org):
    with broker.client(org["api_key"]) as client:
        yield client


def test_garbage_uploads_are_refused(http):
    assert http.post("/v1/files", json={"purpose": "batch"}).status_code == 400
    assert http.post("/v1/files", content=b"--x\r\ngarbage", headers={"content-type": "multipart/form-data; boundary=x"}).status_code == 400
    no_purpose = http.post("/v1/files", files={"file": ("a.jsonl", b"{}\n")})
    assert no_purpose.status_code == 400 and no_purpose.json()["error"]["param"] == "purpose"
    no_file = http.post("/v1/files", data={"purpose": "batch"}, files={"other": ("a", b"x")})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"


def test_a_declared_huge_upload_is_refused_before_it_is_read(broker, org):
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
        sock.sendall((f"POST /v1/files HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {org['api_key']}\r\n"
                      "content-type: multipart/form-data; boundary=x\r\ncontent-length: 1000000000000\r\n\r\n").encode())
        head = ""
        while "file_too_large" not in head:  # the answer, read until its body has come (or the server closed)
            chunk = sock.recv(4096).decode()
            if not chunk:
                break
            head += chunk
    assert head.startswith("HTTP/1.1 413") and "file_too_large" in head


def test_garbage_batch_requests_are_refused(http, client):
    assert http.post("/v1/batches", content=b"not json", headers={"content-type": "application/json"}).status_code == 400
    assert http.post("/v1/batches", json={"input_file_id": "file-nope", "endpoint": "/v1/chat/completions",
                                          "completion_window": "24h"}).status_code == 404
    assert http.post("/v1/batches", json={"input_file_id": 7, "endpoint": "/v1/chat/completions"}).status_code == 400
    assert http.get("/v1/batches/batch_nope").status_code == 404
    assert http.post("/v1/batches/batch_nope/cancel").status_code == 404
    assert http.get("/v1/files/file-nope/content").status_code == 404
    assert http.get("/v1/files", params={"limit": 0}).status_code in (400, 422)


def test_the_input_of_a_running_batch_cannot_be_deleted(client):
    source = upload(client, [chat_line("a", "x")])
    client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.ConflictError):
        client.files.delete(source.id)


def test_no_key_no_files(broker):
    assert httpx.get(broker.url + "/v1/files").status_code == 401
    assert httpx.post(broker.url + "/v1/files", files={"file": ("a", io.BytesIO(b"x"))}, data={"purpose": "batch"}).status_code == 401

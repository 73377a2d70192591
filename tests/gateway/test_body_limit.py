"""The AI routes stop reading a body at AIBROKER_MAX_BODY_BYTES: a chunked body that never
ends is answered 413 `body_too_large` (a server that buffered it whole would never answer)."""

from __future__ import annotations

import pytest

from tests.messaging.malformed_bodies import post_without_end

ROUTES = ["/v1/chat/completions", "/v1/embeddings", "/v1/messages", "/v1/responses", "/v1/completions", "/api/ai/broker"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_chunked_body_past_the_limit_is_413_while_reading(broker, route):
    key = broker.create_org("Acme", credit="10")["api_key"]
    limit = broker.settings.server.max_body_bytes
    answer = post_without_end(broker.port, route, {"authorization": f"Bearer {key}", "content-type": "application/json"},
                              send=limit + 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"body_too_large" in answer
    assert broker.scalar("select count(*) from usage_records") == 0

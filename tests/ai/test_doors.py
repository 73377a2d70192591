"""Seed 001's /api/ai routes through HTTP: each call is billed and recorded like /v1/*."""

from __future__ import annotations

import base64

from tests.ai.conftest import assert_ledger_clean
from tests.gateway.test_media import wav_bytes
from tests.support.usage import usage_rows


def _billed(rows, request_id):
    return sum(r.billed_cost_micros for r in rows if r.request_id == request_id)


def test_completions_chat_and_embeddings_take_seed_001_shapes(broker, org):
    with broker.client(org["api_key"]) as http:
        done = http.post("/api/ai/completions", json={"prompt": "Write a haiku about rain", "model": "mock-chat",
                                                      "systemPrompt": "Be poetic.", "maxTokens": 20, "userId": "u-1"})
        assert done.status_code == 200, done.text
        chat = http.post("/api/ai/chat", json={"model": "mock-chat", "max_tokens": 30,
                                               "messages": [{"role": "user", "content": "hello there"}]})
        assert chat.status_code == 200, chat.text
        vectors = http.post("/api/ai/embeddings", json={"text": ["one", "two"], "model": "mock-embed"})
        assert vectors.status_code == 200, vectors.text
        defaulted = http.post("/api/ai/embeddings", json={"input": "solo"})
        assert defaulted.status_code == 200 and defaulted.json()["model"] == "openai/text-embedding-3-small"
        for path, body in (("/api/ai/completions", {}), ("/api/ai/completions", {"prompt": "x", "bogus": 1}),
                           ("/api/ai/chat", {"messages": []}), ("/api/ai/chat", {"messages": [{"role": "robot", "content": "x"}]}),
                           ("/api/ai/embeddings", {"text": 5}), ("/api/ai/completions", {"prompt": "x", "maxTokens": -1})):
            assert http.post(path, json=body).status_code == 400, (path, body)
    assert done.json()["text"].startswith("Mock reply to: Write a haiku") and done.json()["provider"] == "mock"
    assert chat.json()["message"] == {"role": "assistant", "content": "Mock reply to: hello there"}
    assert len(vectors.json()["embeddings"]) == 2 and len(vectors.json()["embeddings"][0]) == 16
    rows = usage_rows(broker, org["organization_id"])
    for answer in (done, chat, vectors):
        body = answer.json()
        assert body["cost_micros"] == _billed(rows, body["id"]) == int(answer.headers["x-aibroker-cost-micros"]) > 0
    assert next(r for r in rows if r.request_id == done.json()["id"]).user_id == "u-1"
    assert_ledger_clean(broker)


def test_images_and_audio(broker, org):
    wav = wav_bytes(2)
    with broker.client(org["api_key"]) as http:
        images = http.post("/api/ai/images/generate", json={"prompt": "a red fox", "model": "mock-image", "n": 2})
        assert images.status_code == 200, images.text
        as_json = http.post("/api/ai/audio/transcribe", json={"audio": base64.b64encode(wav).decode(), "filename": "memo.wav",
                                                              "model": "mock-transcribe"})
        assert as_json.status_code == 200, as_json.text
        as_form = http.post("/api/ai/audio/transcribe", files={"file": ("memo.wav", wav)}, data={"model": "mock-transcribe"})
        assert as_form.status_code == 200, as_form.text
        assert http.post("/api/ai/audio/transcribe", json={"audio": "%%%", "model": "mock-transcribe"}).status_code == 400
        assert http.post("/api/ai/audio/transcribe", json={"audio": base64.b64encode(b"x").decode(), "filename": "a.exe"}).status_code == 400
        assert http.post("/api/ai/images/generate", json={"prompt": "x", "model": "mock-chat"}).status_code == 400
    assert len(images.json()["images"]) == 2 and images.json()["cost_micros"] > 0
    assert as_json.json()["duration_seconds"] == as_form.json()["duration_seconds"] == 2
    assert as_json.json()["cost_micros"] == as_form.json()["cost_micros"] > 0
    rows = usage_rows(broker, org["organization_id"])
    assert _billed(rows, images.json()["id"]) == images.json()["cost_micros"]
    assert_ledger_clean(broker)


def test_models_and_providers_per_organization(broker, org):
    with broker.client(org["api_key"]) as http:
        models = http.get("/api/ai/models").json()["data"]
        chat_only = http.get("/api/ai/models", params={"kind": "chat", "provider": "mock"}).json()["data"]
        providers = http.get("/api/ai/providers").json()["data"]
        assert http.get("/api/ai/providers", headers={"authorization": "Bearer abk_wrong"}).status_code == 401
    assert {"mock/mock-chat", "mock/mock-embed"} <= {m["id"] for m in models}
    assert chat_only and all(m["kind"] == "chat" and m["provider"] == "mock" for m in chat_only)
    by_name = {p["name"]: p for p in providers}
    assert {"mock", "openai"} <= set(by_name)
    assert by_name["openai"]["key"] == "platform" and by_name["openai"]["health"] == {"healthy": True, "breaker": "closed", "consecutive_failures": 0}
    assert "mock/mock-chat" in by_name["mock"]["models"]
    # No key of its own: when the platform's key was last used reflects every tenant's traffic.
    assert by_name["openai"]["last_used_at"] is None


def test_a_failing_provider_shows_its_breaker_open(broker, org):
    with broker.client(org["api_key"]) as http:
        for _ in range(8):
            http.post("/api/ai/chat", json={"model": "mock-down", "messages": [{"role": "user", "content": "x"}]})
        mock = next(p for p in http.get("/api/ai/providers").json()["data"] if p["name"] == "mock")
    assert mock["health"]["breaker"] in ("open", "half_open") and mock["health"]["healthy"] is False

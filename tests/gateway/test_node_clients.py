"""The Node clients, latest versions (tests/node/package.json), against a running broker on the mock
provider: the `openai` SDK's responses.create and default (base64) embeddings, and the Vercel AI
SDK's generateText with `openai(model)`, whose default path is /v1/responses (plain, and a
one-tool loop to its final text). `make test` installs their packages (npm ci --prefix tests/node)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import openai
import pytest

from tests.support.usage import usage_rows

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def run_node(script: str, broker, key: str) -> dict:
    node = shutil.which("node")
    assert node, "node is not on PATH: the Node client tests need Node.js"
    assert (NODE_DIR / "node_modules" / "openai").is_dir(), "run `npm ci --prefix tests/node` (make test does)"
    env = {**os.environ, "AIBROKER_URL": broker.url, "AIBROKER_KEY": key}
    env = {k: v for k, v in env.items() if not k.startswith("OPENAI_")}  # the SDKs must use what the script gives
    done = subprocess.run([node, str(NODE_DIR / script)], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_node_openai_sdk_responses_and_default_base64_embeddings(broker, org, client):
    out = run_node("openai_sdk.mjs", broker, org["api_key"])
    response = out["response"]
    assert response["id"].startswith("resp_") and response["status"] == "completed" and response["model"] == "mock-chat"
    assert response["output_text"] == "Mock reply to: Hello from Node"
    assert response["usage"]["input_tokens"] > 0 and response["usage"]["output_tokens"] == len(response["output_text"].split())
    assert client.responses.retrieve(response["id"]).output_text == response["output_text"]  # stored as created
    vector = out["embedding"]["vector"]
    floats = client.embeddings.create(model="mock-embed", input="a sentence to embed", encoding_format="float")
    # decoded from base64 float32 (the float path rounds to 6 places): the same vector, not zeros
    assert vector == pytest.approx(floats.data[0].embedding, abs=1e-6) and any(abs(v) > 1e-3 for v in vector)
    rows = usage_rows(broker, org["organization_id"])
    assert [r.endpoint for r in rows[:2]] == ["responses", "embeddings"] and all(r.status == "success" for r in rows)
    assert all(r.billed_cost_micros > 0 for r in rows)


def test_vercel_ai_sdk_generate_text_goes_through_responses(broker, org):
    out = run_node("vercel_ai.mjs", broker, org["api_key"])
    assert out["text"] == "Mock reply to: Hello from the Vercel AI SDK"
    assert out["finishReason"] == "stop" and out["modelId"] == "mock-chat"
    assert out["usage"]["outputTokens"] == len(out["text"].split()) and out["usage"]["inputTokens"] > 0
    assert out["responseId"].startswith("resp_")
    # one tool, run by the SDK, its result sent back as the next turn: the mock then answers in text
    tool = out["tool"]
    [call] = tool["steps"][0]["toolCalls"]
    assert call["name"] == "weather" and isinstance(call["input"]["city"], str)
    assert [s["finishReason"] for s in tool["steps"]] == ["tool-calls", "stop"]
    assert tool["toolResults"] == [f"sunny in {call['input']['city']}"]
    assert tool["text"] == f"Mock answer from the tool result: sunny in {call['input']['city']}"
    rows = usage_rows(broker, org["organization_id"])
    assert [(r.endpoint, r.status, r.model) for r in rows] == [("responses", "success", "mock/mock-chat")] * 3
    assert rows[0].input_tokens == out["usage"]["inputTokens"] and all(r.billed_cost_micros > 0 for r in rows)
    client = openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"])
    assert client.responses.retrieve(out["responseId"]).output_text == out["text"]
    final = client.responses.retrieve(tool["steps"][1]["responseId"])
    assert final.output_text == tool["text"]
    kinds = [item.type for item in client.responses.input_items.list(final.id, order="asc").data]
    assert "function_call_output" in kinds  # the tool's output reached the broker as a Responses input item

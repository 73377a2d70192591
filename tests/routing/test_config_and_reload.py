"""`aibroker config load` (the seed's example, idempotent) and hot reload across two
broker instances on one database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.routing.conftest import MOCK_CONFIG, load_yaml
from tests.support.broker import BrokerServer

ROOT = Path(__file__).resolve().parents[2]
BASE = "/api/admin/routing"


def _cli_load(database_url: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIBROKER_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "aibroker.cli", "config", "load", str(path), "--json"],
        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


def _without_ids(matrix: dict) -> dict:
    def strip(rows):
        return [{k: v for k, v in row.items() if k != "id"} for row in rows]

    return {k: strip(v) if isinstance(v, list) and v and isinstance(v[0], dict) else v for k, v in matrix.items() if k != "version"}


def test_the_seed_example_loads_idempotently(broker):
    first = _cli_load(broker.database_url, ROOT / "examples" / "ai-config-core.yaml")
    assert first.returncode == 0, first.stderr
    with broker.admin() as admin:
        before = admin.get(f"{BASE}/matrix").json()
        second = _cli_load(broker.database_url, ROOT / "examples" / "ai-config-core.yaml")
        assert second.returncode == 0, second.stderr
        after = admin.get(f"{BASE}/matrix").json()
    assert _without_ids(before) == _without_ids(after)
    assert [r["id"] for r in before["matrix"]] == [r["id"] for r in after["matrix"]]  # updated in place
    assert {p["slug"] for p in after["providers"]} == {"openai", "anthropic", "together", "xai", "gemini"}
    assert len(after["features"]) == 8
    limits = {(r["plan"], r["profile"], r["feature"], r["provider"]): (r["daily_limit"], r["monthly_limit"]) for r in after["matrix"]}
    assert limits[("free", "default", "diario_analise", "openai")] == (3, 30)
    assert limits[("profissional", "default", "diario_analise", "openai")] == (10, 200)
    assert limits[("premium", "default", "diario_analise", "anthropic")] == (50, 1000)
    assert limits[("premium", "admin", "oraculo_admin", "openai")] == (None, None)


def test_a_bad_file_is_refused_whole(broker, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("providers: [{slug: mock, default_model: mock-chat}]\nfeatures: [{slug: a}]\n"
                    "matrix: [{plan: free, feature: a, provider: mock, model: mock-unicorn}]\n")
    result = _cli_load(broker.database_url, path)
    assert result.returncode == 1 and "matrix[0]" in result.stderr and "mock-unicorn" in result.stderr
    with broker.admin() as admin:
        assert admin.get(f"{BASE}/matrix").json()["providers"] == []  # all or nothing


def _poll(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_changes_reach_another_broker_within_seconds(broker, tmp_path):
    other = BrokerServer(broker.database_url)
    other.start()
    try:
        org = broker.create_org("Pro", plan="professional")
        with other.client(org["api_key"]) as client, other.admin() as other_admin, broker.admin() as admin:
            def served_model():
                response = client.post("/v1/chat/completions", headers={"x-aibroker-feature": "resumo"},
                                       json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
                return response.headers.get("x-aibroker-model")

            assert served_model() == "openai/gpt-4o-mini"  # nothing configured yet: the platform default
            load_yaml(broker, tmp_path, MOCK_CONFIG)  # loaded through the first broker's database
            assert _poll(lambda: served_model() == "mock/mock-chat")  # professional: mock-down, then mock-chat
            [row] = [r for r in admin.get(f"{BASE}/matrix").json()["matrix"]
                     if (r["plan"], r["feature"], r["model"]) == ("professional", "resumo", "mock/mock-down")]
            admin.patch(f"{BASE}/matrix/{row['id']}", json={"model": "mock-text"}).raise_for_status()

            def other_sees_it():
                answer = other_admin.post(f"{BASE}/resolve", json={"plan": "professional", "feature": "resumo"}).json()
                return answer["candidates"][0]["model"] == "mock/mock-text"

            assert _poll(other_sees_it)
            assert _poll(lambda: served_model() == "mock/mock-text")
    finally:
        other.stop()

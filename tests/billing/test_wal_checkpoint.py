"""SQLite only (PostgreSQL has no WAL of ours to fold): the money writer's inline
connection never checkpoints, so the writer thread must, or the WAL grows without bound."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import BrokerServer, serving


@pytest.fixture
def sqlite_broker(tmp_path: Path, sqlite_template: Path, broker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[BrokerServer]:
    path = tmp_path / "aibroker.db"
    shutil.copy(sqlite_template, path)
    with serving(f"sqlite+aiosqlite:///{path}", {**broker_env, "AIBROKER_LIMITS_ENABLED": "false"}, monkeypatch) as server:
        yield server


def test_the_writer_checkpoints_the_wal_while_requests_are_served(sqlite_broker: BrokerServer) -> None:
    org = sqlite_broker.create_org("Acme", credit="10")
    with sqlite_broker.client(org["api_key"]) as client:
        for _ in range(20):
            answer = client.post("/v1/chat/completions", json={"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]},
                                 headers={"cache-control": "no-store"})
            assert answer.status_code == 200, answer.text
        sqlite_broker.flush()
        reader = client.get("/api/wallet")  # a pooled reader connection stays open meanwhile
        assert reader.status_code == 200
    result = sqlite_broker.services.writer._checkpoint_sync()
    assert result is not None, "the checkpoint failed"
    busy, frames, checkpointed = result
    assert busy == 0 and frames > 0 and checkpointed == frames

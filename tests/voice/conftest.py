"""Voice tests: a broker whose `openai` is the fake OpenAI Realtime server and whose `gemini`
is the fake Gemini Live server (both real WebSocket servers on free ports)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.gemini_live import FakeGeminiLive
from tests.fakes.openai_realtime import FakeOpenAIRealtime


@pytest.fixture(scope="session")
def realtime_server() -> Iterator[FakeOpenAIRealtime]:
    with FakeOpenAIRealtime(api_key="sk-test") as fake:
        yield fake


@pytest.fixture(scope="session")
def gemini_server() -> Iterator[FakeGeminiLive]:
    with FakeGeminiLive(api_key="gm-test") as fake:
        yield fake


@pytest.fixture
def realtime(realtime_server: FakeOpenAIRealtime) -> Iterator[FakeOpenAIRealtime]:
    realtime_server.reset()
    yield realtime_server
    realtime_server.reset()


@pytest.fixture
def gemini(gemini_server: FakeGeminiLive) -> Iterator[FakeGeminiLive]:
    gemini_server.reset()
    yield gemini_server
    gemini_server.reset()


@pytest.fixture
def broker_env(realtime: FakeOpenAIRealtime, gemini: FakeGeminiLive) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": realtime.base_url,
        "GEMINI_API_KEY": "gm-test",
        "GEMINI_BASE_URL": gemini.base_url,
        "AIBROKER_ADMIN_TOKEN": "test-admin-token",
        "AIBROKER_VOICE_HEARTBEAT_SECONDS": "0.5",
        "AIBROKER_VOICE_UPSTREAM_CONNECT_SECONDS": "5",
    }


@pytest.fixture
def org(broker):
    return broker.create_org("Acme", credit="10")

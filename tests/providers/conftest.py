"""Fixtures of the provider tests: the fake Anthropic, Gemini and Ollama servers (one per
session, reset per test) and a broker wired to all of them plus the fake OpenAI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

ANTHROPIC_KEY = "sk-ant-test"
GEMINI_KEY = "gemini-test-key"
ALIASES = '{"fast": "anthropic/claude-haiku-4-5", "local": "ollama/llama3.2"}'


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=ANTHROPIC_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
def gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=GEMINI_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
def ollama_server() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


@pytest.fixture
def fake_anthropic(anthropic_server: FakeAnthropic) -> Iterator[FakeAnthropic]:
    anthropic_server.reset()
    yield anthropic_server
    anthropic_server.reset()


@pytest.fixture
def fake_gemini(gemini_server: FakeGemini) -> Iterator[FakeGemini]:
    gemini_server.reset()
    yield gemini_server
    gemini_server.reset()


@pytest.fixture
def fake_ollama(ollama_server: FakeOllama) -> Iterator[FakeOllama]:
    ollama_server.reset()
    yield ollama_server
    ollama_server.reset()


@pytest.fixture
def broker_env(
    upstream: FakeOpenAI, fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini, fake_ollama: FakeOllama
) -> dict[str, str]:
    """The shared test broker's environment, plus every fake provider and two aliases."""
    return {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": upstream.base_url,
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": fake_anthropic.base_url,
        "GEMINI_API_KEY": GEMINI_KEY,
        "GEMINI_BASE_URL": fake_gemini.base_url,
        "OLLAMA_BASE_URL": fake_ollama.base_url,
        "AIBROKER_ALIASES": ALIASES,
        "AIBROKER_ADMIN_TOKEN": "test-admin-token",
        "AIBROKER_RETRY_BASE_SECONDS": "0.01",
        "AIBROKER_RETRY_MAX_SECONDS": "0.05",
        "AIBROKER_UPSTREAM_TIMEOUT_SECONDS": "5",
        "AIBROKER_MOCK_LATENCY_MS": "300",
    }


import pytest

from aibroker.catalog.service import Catalog, UnknownModel
from aibroker.providers.breaker import CircuitBreaker
from aibroker.providers.specs import enabled_providers


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_half_opens_and_closes():
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown=10, clock=clock)
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 10
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now = 20
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()


def test_providers_enabled_by_key_or_local_base_url():
    found = enabled_providers({"OPENAI_API_KEY": "k", "VLLM_BASE_URL": "http://127.0.0.1:9/v1/"})
    assert set(found) == {"openai", "vllm", "mock"}
    assert found["vllm"].base_url == "http://127.0.0.1:9/v1"
    assert found["openai"].base_url == "https://api.openai.com/v1"
    overridden = enabled_providers({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://fake/v1"})
    assert overridden["openai"].base_url == "http://fake/v1"


def test_custom_openai_compatible_provider_from_settings():
    env = {"AIBROKER_EXTRA_PROVIDERS": '[{"name": "acme", "base_url": "http://acme.local/v1", "key_env": "ACME_KEY"}]', "ACME_KEY": "s"}
    found = enabled_providers(env)
    assert found["acme"].spec.wire == "openai" and found["acme"].api_key == "s"


def test_model_names_resolve_by_full_bare_and_alias():
    catalog = Catalog({"openai", "mock"}, aliases={"fast": "mock/mock-chat"})
    assert catalog.resolve("openai/gpt-4o-mini").id == "openai/gpt-4o-mini"
    assert catalog.resolve("gpt-4o-mini").id == "openai/gpt-4o-mini"
    assert catalog.resolve("mock-chat").id == "mock/mock-chat"
    assert catalog.resolve("fast").id == "mock/mock-chat"
    with pytest.raises(UnknownModel, match="no key configured"):
        catalog.resolve("anthropic/claude-sonnet-4-5")
    with pytest.raises(UnknownModel, match="does not exist"):
        catalog.resolve("made-up")

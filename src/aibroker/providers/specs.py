"""Named provider entries: which wire format, where, and which key. Adding an
OpenAI-compatible provider is a new entry here (or in AIBROKER_EXTRA_PROVIDERS), not a class."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

OPENAI_WIRE = "openai"
ANTHROPIC_WIRE = "anthropic"
GEMINI_WIRE = "gemini"
OLLAMA_WIRE = "ollama"
MOCK_WIRE = "mock"
WIRES = (OPENAI_WIRE, ANTHROPIC_WIRE, GEMINI_WIRE, OLLAMA_WIRE, MOCK_WIRE)


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    wire: str  # which adapter speaks to it
    default_base_url: str | None
    key_env: str | None  # env var holding the platform's key
    base_url_env: str | None  # env var overriding the base URL
    # Self-hosted (Ollama, vLLM, llama.cpp, custom servers): enabled by its base URL env var alone
    # (no key needed), and its models are discovered at startup and served at zero cost. Hosted
    # providers (Groq, Mistral ...) are never auto-registered: their models need a catalog price.
    local: bool = False
    display_name: str = ""
    # Prepended to catalog model names upstream, e.g. "accounts/fireworks/models/" (Fireworks).
    model_prefix: str = ""
    # Declared in AIBROKER_EXTRA_PROVIDERS: its configured base URL enables it.
    declared: bool = False


BUILTIN: tuple[ProviderSpec, ...] = (
    ProviderSpec("openai", OPENAI_WIRE, "https://api.openai.com/v1", "OPENAI_API_KEY", "OPENAI_BASE_URL", display_name="OpenAI"),
    ProviderSpec("anthropic", ANTHROPIC_WIRE, "https://api.anthropic.com", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", display_name="Anthropic"),
    ProviderSpec("gemini", GEMINI_WIRE, "https://generativelanguage.googleapis.com", "GEMINI_API_KEY", "GEMINI_BASE_URL", display_name="Google Gemini"),
    # Local Ollama: set OLLAMA_BASE_URL (usually http://localhost:11434) to enable it.
    ProviderSpec("ollama", OLLAMA_WIRE, "http://localhost:11434", "OLLAMA_API_KEY", "OLLAMA_BASE_URL", local=True, display_name="Ollama"),
    ProviderSpec("together", OPENAI_WIRE, "https://api.together.xyz/v1", "TOGETHER_API_KEY", "TOGETHER_BASE_URL", display_name="Together AI"),
    ProviderSpec("xai", OPENAI_WIRE, "https://api.x.ai/v1", "XAI_API_KEY", "XAI_BASE_URL", display_name="xAI"),
    ProviderSpec("groq", OPENAI_WIRE, "https://api.groq.com/openai/v1", "GROQ_API_KEY", "GROQ_BASE_URL", display_name="Groq"),
    ProviderSpec("mistral", OPENAI_WIRE, "https://api.mistral.ai/v1", "MISTRAL_API_KEY", "MISTRAL_BASE_URL", display_name="Mistral"),
    ProviderSpec("deepseek", OPENAI_WIRE, "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", display_name="DeepSeek"),
    ProviderSpec("vllm", OPENAI_WIRE, None, "VLLM_API_KEY", "VLLM_BASE_URL", local=True, display_name="vLLM"),
    ProviderSpec("llamacpp", OPENAI_WIRE, None, "LLAMACPP_API_KEY", "LLAMACPP_BASE_URL", local=True, display_name="llama.cpp server"),
    ProviderSpec("mock", MOCK_WIRE, None, None, None, display_name="Mock"),
)


@dataclass(frozen=True, slots=True)
class EnabledProvider:
    spec: ProviderSpec
    base_url: str | None
    api_key: str | None


def _extra_specs(env: dict[str, str]) -> list[ProviderSpec]:
    """AIBROKER_EXTRA_PROVIDERS: a JSON list of {name, base_url, key_env?, wire?, model_prefix?,
    display_name?, local?} for custom servers. Without key_env the server is called without a key.
    `local` (self-hosted: discover its models at zero cost) defaults to true without key_env and
    false with one (a hosted service); set it for a self-hosted server behind a key."""
    raw = env.get("AIBROKER_EXTRA_PROVIDERS")
    if not raw:
        return []
    specs = []
    for item in json.loads(raw):
        name = item["name"]
        wire = item.get("wire", OPENAI_WIRE)
        local = item.get("local", item.get("key_env") is None)
        if wire not in WIRES or "/" in name or not item.get("base_url") or not isinstance(local, bool):
            raise ValueError(
                f"AIBROKER_EXTRA_PROVIDERS: bad entry {item!r} (wire one of {WIRES}, base_url required, local true/false)"
            )
        specs.append(
            ProviderSpec(
                name=name,
                wire=wire,
                default_base_url=item["base_url"],
                key_env=item.get("key_env"),
                base_url_env=f"{name.upper()}_BASE_URL",
                local=local,
                display_name=item.get("display_name", name),
                model_prefix=item.get("model_prefix", ""),
                declared=True,
            )
        )
    return specs


def known_provider_names(env: dict[str, str] | None = None) -> set[str]:
    """Every provider this broker could serve (built-in or declared), enabled or not."""
    env = dict(os.environ) if env is None else env
    return {spec.name for spec in (*BUILTIN, *_extra_specs(env))}


def enabled_providers(env: dict[str, str] | None = None) -> dict[str, EnabledProvider]:
    """A provider is enabled when its key is set (or, for local servers, its base URL env var;
    for declared extra providers, their base URL); mock always."""
    env = dict(os.environ) if env is None else env
    found: dict[str, EnabledProvider] = {}
    for spec in (*BUILTIN, *_extra_specs(env)):
        key = env.get(spec.key_env) if spec.key_env else None
        env_url = env.get(spec.base_url_env) if spec.base_url_env else None
        base_url = env_url or spec.default_base_url
        if spec.wire == MOCK_WIRE:
            found[spec.name] = EnabledProvider(spec, None, None)
        elif key or (spec.local and base_url and (env_url or spec.declared)):
            found[spec.name] = EnabledProvider(spec, base_url.rstrip("/") if base_url else None, key)
    return found

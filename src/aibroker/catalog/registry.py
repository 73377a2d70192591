"""Catalog entries from the packaged data file, merged with database overrides."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import yaml

from aibroker.kit.money import price_to_micros

CHAT = "chat"
EMBEDDING = "embedding"
IMAGE = "image"  # image generation (/v1/images/generations), priced per image
AUDIO = "audio"  # transcription (/v1/audio/transcriptions), priced per audio minute
SPEECH = "speech"  # text to speech (/v1/audio/speech), priced per 1M input characters
MODERATION = "moderation"  # /v1/moderations; free at OpenAI (recorded at cost 0)
REALTIME = "realtime"  # realtime voice sessions (voice/): text and audio tokens priced apart


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str  # "provider/model"
    provider: str
    name: str  # the model's name upstream
    kind: str = CHAT
    input_micros_per_m: int = 0
    output_micros_per_m: int = 0
    cached_input_micros_per_m: int = 0
    cache_write_micros_per_m: int = 0
    context_length: int = 8192
    max_output_tokens: int = 4096
    capabilities: frozenset[str] = field(default_factory=frozenset)
    enabled: bool = True
    image_micros: int = 0  # per generated image, when no finer price matches
    # ("quality/size" | "quality" | "size", micros per image): finer image prices
    image_micros_by: tuple[tuple[str, int], ...] = ()
    audio_minute_micros: int = 0  # per minute of transcribed audio
    speech_micros_per_m_chars: int = 0  # per 1M characters of text spoken (text to speech)
    # Realtime models: audio tokens have their own prices (per 1M tokens), text tokens use the above.
    audio_input_micros_per_m: int = 0
    audio_output_micros_per_m: int = 0
    cached_audio_input_micros_per_m: int = 0

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    def pricing(self) -> dict[str, str]:
        """OpenRouter-style pricing strings: USD per token."""
        def per_token(micros_per_m: int) -> str:
            return f"{micros_per_m / 1e12:.12f}".rstrip("0").rstrip(".") or "0"

        prices = {
            "prompt": per_token(self.input_micros_per_m),
            "completion": per_token(self.output_micros_per_m),
            "input_cache_read": per_token(self.cached_input_micros_per_m),
        }
        if self.image_micros or self.image_micros_by:
            prices["image"] = f"{self.image_micros / 1e6:.6f}".rstrip("0").rstrip(".")
        if self.audio_minute_micros:
            prices["audio_minute"] = f"{self.audio_minute_micros / 1e6:.6f}".rstrip("0").rstrip(".")
        if self.audio_input_micros_per_m or self.audio_output_micros_per_m:  # realtime models
            prices["audio"] = per_token(self.audio_input_micros_per_m)
            prices["audio_output"] = per_token(self.audio_output_micros_per_m)
        if self.speech_micros_per_m_chars:
            prices["character"] = per_token(self.speech_micros_per_m_chars)  # USD per input character
        return prices


def _entry(provider: str, name: str, spec: dict[str, Any]) -> ModelEntry:
    return ModelEntry(
        id=f"{provider}/{name}",
        provider=provider,
        name=name,
        kind=spec.get("kind", CHAT),
        input_micros_per_m=price_to_micros(spec.get("input")),
        output_micros_per_m=price_to_micros(spec.get("output")),
        cached_input_micros_per_m=price_to_micros(spec.get("cached_input", spec.get("input"))),
        cache_write_micros_per_m=price_to_micros(spec.get("cache_write", spec.get("input"))),
        context_length=int(spec.get("context", 8192)),
        max_output_tokens=int(spec.get("max_output", 0 if spec.get("kind") in (EMBEDDING, IMAGE, AUDIO, SPEECH, MODERATION) else 4096)),
        capabilities=frozenset(spec.get("capabilities", [])),
        # USD per unit -> micros: the same decimal-to-micros conversion as per-1M prices
        image_micros=price_to_micros(spec.get("per_image")),
        image_micros_by=tuple((str(k), price_to_micros(v)) for k, v in (spec.get("per_image_by") or {}).items()),
        audio_minute_micros=price_to_micros(spec.get("per_audio_minute")),
        speech_micros_per_m_chars=price_to_micros(spec.get("per_1m_characters")),
        audio_input_micros_per_m=price_to_micros(spec.get("audio_input")),
        audio_output_micros_per_m=price_to_micros(spec.get("audio_output")),
        cached_audio_input_micros_per_m=price_to_micros(spec.get("cached_audio_input", spec.get("audio_input"))),
    )


def load_packaged() -> dict[str, ModelEntry]:
    text = resources.files("aibroker.catalog").joinpath("models.yaml").read_text()
    data = yaml.safe_load(text)
    return {
        entry.id: entry
        for provider, models in data.items()
        for name, spec in models.items()
        for entry in [_entry(provider, name, spec or {})]
    }


def apply_override(entry: ModelEntry | None, model_id: str, override: Any) -> ModelEntry:
    """Merge a ModelOverride row over a packaged entry (or create the entry)."""
    if entry is None:
        provider, _, name = model_id.partition("/")
        # A new model's cached / cache-write tokens cost its input price unless set (as in the
        # packaged file): never free by omission.
        input_price = override.input_micros_per_m or 0
        entry = ModelEntry(id=model_id, provider=provider, name=name, cached_input_micros_per_m=input_price,
                           cache_write_micros_per_m=input_price)
    changes: dict[str, Any] = {"enabled": bool(override.enabled)}
    for attr in (
        "input_micros_per_m",
        "output_micros_per_m",
        "cached_input_micros_per_m",
        "context_length",
        "max_output_tokens",
    ):
        value = getattr(override, attr)
        if value is not None:
            changes[attr] = value
    if override.capabilities is not None:
        changes["capabilities"] = frozenset(override.capabilities)
    return replace(entry, **changes)

"""Checks a request against a model before any upstream call (and before any charge),
and prepares the body each candidate is sent."""

from __future__ import annotations

from typing import Any

from aibroker.catalog.registry import AUDIO, CHAT, EMBEDDING, IMAGE, MODERATION, REALTIME, SPEECH, ModelEntry
from aibroker.errors import InvalidRequest


class MissingCapability(InvalidRequest):
    def __init__(self, model: ModelEntry, capability: str, what: str) -> None:
        super().__init__(
            f"The model '{model.id}' does not support {what} (capability '{capability}'). "
            "Choose a model that has it (GET /v1/models lists capabilities).",
            param="model",
            code="unsupported_capability",
        )


def _has_images(messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") in ("image_url", "input_image", "image") for p in m["content"])
        for m in messages
    )


def check_chat(model: ModelEntry, body: dict[str, Any]) -> None:
    if model.kind != CHAT:
        raise InvalidRequest(
            f"The model '{model.id}' is an {model.kind} model; use it with {ROUTE_OF_KIND.get(model.kind, 'its own route')}, not chat.",
            param="model",
        )
    if body.get("tools") and body.get("tool_choice") != "none" and not model.supports("tools"):
        raise MissingCapability(model, "tools", "tools / function calling")
    if _has_images(body["messages"]) and not model.supports("vision"):
        raise MissingCapability(model, "vision", "image inputs")
    fmt = (body.get("response_format") or {}).get("type")
    if fmt in ("json_object", "json_schema") and not model.supports("json"):
        raise MissingCapability(model, "json", f"response_format '{fmt}'")
    requested = output_limit(body)
    if requested is not None and model.max_output_tokens and requested > model.max_output_tokens:
        param = "max_completion_tokens" if body.get("max_completion_tokens") else "max_tokens"
        raise InvalidRequest(
            f"{param} is {requested}, but '{model.id}' can produce at most {model.max_output_tokens} tokens. "
            f"Lower {param}.",
            param=param,
        )


def check_embedding(model: ModelEntry) -> None:
    if model.kind != EMBEDDING:
        raise InvalidRequest(
            f"The model '{model.id}' is not an embedding model; choose one such as 'mock-embed' or "
            "'text-embedding-3-small'.",
            param="model",
        )


ROUTE_OF_KIND = {EMBEDDING: "/v1/embeddings", IMAGE: "/v1/images/generations", AUDIO: "/v1/audio/transcriptions",
                 SPEECH: "/v1/audio/speech", MODERATION: "/v1/moderations",
                 REALTIME: "a voice session (/api/voice/init, or the WebSocket /v1/realtime)"}


def check_kind(kind: str, examples: str) -> Any:
    """A check that the model is of `kind` (speech, moderation), naming models that are."""
    def check(model: ModelEntry) -> None:
        if model.kind != kind:
            raise InvalidRequest(
                f"The model '{model.id}' is not a {kind} model; choose one such as {examples}.", param="model"
            )

    return check


check_speech = check_kind(SPEECH, "'mock-tts', 'tts-1' or 'gpt-4o-mini-tts'")
check_moderation = check_kind(MODERATION, "'mock-moderation' or 'omni-moderation-latest'")


def check_images(model: ModelEntry) -> None:
    if not model.supports("images"):
        raise MissingCapability(model, "images", "image generation")


def check_audio(model: ModelEntry) -> None:
    if not model.supports("audio"):
        raise MissingCapability(model, "audio", "audio transcription")


def output_limit(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    return int(value) if value else None


def capped_output(model: ModelEntry, body: dict[str, Any], default_cap: int) -> int:
    """The output tokens this call may produce: the caller's limit or the broker's cap."""
    requested = output_limit(body)
    if requested is not None:
        return requested
    return min(default_cap, model.max_output_tokens) if model.max_output_tokens else default_cap


def body_for(model: ModelEntry, body: dict[str, Any], max_output: int) -> dict[str, Any]:
    """The body sent upstream: upstream model name, broker-only fields removed, output capped."""
    upstream = {k: v for k, v in body.items() if k not in ("feature", "cache", "aibroker")}
    upstream["model"] = model.name
    if model.kind == CHAT:
        if model.supports("reasoning") or "max_completion_tokens" in upstream:
            # Reasoning models refuse max_tokens; max_completion_tokens includes reasoning tokens.
            upstream.pop("max_tokens", None)
            upstream["max_completion_tokens"] = max_output
        else:
            upstream["max_tokens"] = max_output
    return upstream

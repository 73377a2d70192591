"""The mock provider's moderation and speech: deterministic, offline.

mock-moderation flags OpenAI's categories by keyword (lower-cased substring match), with a
score of 0.9 for a match and 0.0001 otherwise; image parts are looked at by their URL text
only, for the categories OpenAI's omni model applies to images.
mock-tts speaks WAV or raw PCM (16-bit mono, 24 kHz, as OpenAI's pcm): a quiet 400 Hz tone
lasting SECONDS_PER_CHARACTER per character of input (divided by `speed`).
"""

from __future__ import annotations

import io
import math
import struct
import wave
from typing import Any

from aibroker.kit.ids import new_id

# OpenAI's moderation categories and the mock's keywords for each.
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "harassment": ("idiot", "loser", "stupid"),
    "harassment/threatening": ("i will hurt you", "watch your back"),
    "hate": ("hate them all",),
    "hate/threatening": ("exterminate",),
    "illicit": ("buy drugs", "launder", "counterfeit"),
    "illicit/violent": ("build a bomb", "make a weapon"),
    "self-harm": ("hurt myself", "self-harm"),
    "self-harm/intent": ("i want to die",),
    "self-harm/instructions": ("how to cut myself",),
    "sexual": ("explicit sex", "nsfw"),
    "sexual/minors": ("underage sex",),
    "violence": ("kill", "murder", "stab"),
    "violence/graphic": ("gore", "dismember"),
}
# The categories OpenAI's omni-moderation also checks images for.
IMAGE_CATEGORIES = frozenset({"self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "violence", "violence/graphic"})
FLAGGED_SCORE, CLEAN_SCORE = 0.9, 0.0001

SAMPLE_RATE = 24_000
SECONDS_PER_CHARACTER = 0.06  # about 1,000 characters a minute, as speech goes
TONE_HZ = 400  # 60 samples a period at 24 kHz: the tone repeats exactly
SPEECH_FORMATS = ("wav", "pcm")
SPEECH_MIME = {"wav": "audio/wav", "pcm": "audio/pcm"}


def _inputs(value: Any) -> list[list[tuple[str, str]]]:
    """Each moderated input as (input type, text) pieces: strings, or one multimodal list."""
    if isinstance(value, str):
        return [[("text", value)]]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [[("text", v)] for v in value]
    pieces = []
    for part in value or ():
        if isinstance(part, dict) and part.get("type") == "image_url":
            pieces.append(("image", str((part.get("image_url") or {}).get("url", ""))))
        elif isinstance(part, dict):
            pieces.append(("text", str(part.get("text", ""))))
    return [pieces]


def _result(pieces: list[tuple[str, str]]) -> dict[str, Any]:
    categories, scores, applied = {}, {}, {}
    for name, words in CATEGORY_WORDS.items():
        types = [kind for kind, _ in pieces if kind == "text" or name in IMAGE_CATEGORIES]
        applied[name] = sorted(set(types))
        hit = any(w in text.lower() for kind, text in pieces if kind in types for w in words)
        categories[name], scores[name] = hit, FLAGGED_SCORE if hit else CLEAN_SCORE
    return {"flagged": any(categories.values()), "categories": categories, "category_scores": scores,
            "category_applied_input_types": applied}


def moderation(body: dict[str, Any], model: str) -> dict[str, Any]:
    return {"id": new_id("modr"), "model": model, "results": [_result(p) for p in _inputs(body.get("input"))]}


def pcm16(text: str, speed: float) -> bytes:
    """The mock's voice: mono PCM16 little-endian at 24 kHz, as long as the text takes to say."""
    frames = max(1, round(len(text) * SECONDS_PER_CHARACTER / speed * SAMPLE_RATE))
    period_frames = SAMPLE_RATE // TONE_HZ
    period = b"".join(struct.pack("<h", round(3000 * math.sin(2 * math.pi * i / period_frames))) for i in range(period_frames))
    whole, rest = divmod(frames, period_frames)
    return period * whole + period[: rest * 2]


def wav(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(pcm)
    return out.getvalue()


def speech(body: dict[str, Any]) -> tuple[bytes, str]:
    """(audio, content type) for a wav or pcm request; the caller checked the format."""
    fmt = body.get("response_format") or "wav"
    pcm = pcm16(str(body.get("input", "")), float(body.get("speed") or 1.0))
    return (wav(pcm) if fmt == "wav" else pcm), SPEECH_MIME[fmt]

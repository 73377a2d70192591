"""Input rules (seed 001, security): prompt size and message count per plan, a configurable
blocklist, and optional PII redaction applied before the request leaves the broker.

Redaction rewrites the request body in place, so the upstream call, the cache key and
anything stored afterwards only ever see the placeholders.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import phonenumbers

from aibroker.errors import BrokerError, InvalidRequest
from aibroker.limits.plans import Plan

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by spaces or dashes.
CARD_CANDIDATE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")


class ContentBlocked(BrokerError):
    status_code = 400
    error_type = "content_blocked"


def luhn_valid(digits: str) -> bool:
    total, double = 0, False
    for char in reversed(digits):
        value = int(char)
        if double:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
        double = not double
    return total % 10 == 0


def parse_blocklist(raw: str) -> list[re.Pattern[str]]:
    """JSON list or comma-separated; `/.../` entries are regexes, others whole words (any case)."""
    raw = raw.strip()
    if not raw:
        return []
    entries = json.loads(raw) if raw.startswith("[") else [e for e in raw.split(",")]
    patterns = []
    for entry in (str(e).strip() for e in entries):
        if not entry:
            continue
        if len(entry) > 2 and entry.startswith("/") and entry.endswith("/"):
            patterns.append(re.compile(entry[1:-1], re.IGNORECASE))
        else:
            patterns.append(re.compile(rf"\b{re.escape(entry)}\b", re.IGNORECASE))
    return patterns


class Redactor:
    def __init__(self, phone_region: str) -> None:
        self.region = phone_region

    def __call__(self, text: str) -> str:
        text = CARD_CANDIDATE.sub(self._card, text)
        text = EMAIL.sub("[EMAIL]", text)
        return self._phones(text)

    @staticmethod
    def _card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        return "[CARD]" if luhn_valid(digits) else match.group()

    def _phones(self, text: str) -> str:
        if not any(c.isdigit() for c in text):
            return text
        pieces, last = [], 0
        for found in phonenumbers.PhoneNumberMatcher(text, self.region):
            pieces += [text[last : found.start], "[PHONE]"]
            last = found.end
        return "".join(pieces) + text[last:] if pieces else text


def _text_slots(body: dict[str, Any], kind: str) -> Iterator[tuple[Any, Any]]:
    """(container, index) of every prompt string, so it can be read and replaced in place."""
    if kind in ("image", "audio"):  # an image prompt; a transcription's optional context prompt
        if isinstance(body.get("prompt"), str):
            yield body, "prompt"
        return
    if kind in ("embedding", "speech"):  # the text to embed, or to speak
        value = body.get("input")
        if isinstance(value, str):
            yield body, "input"
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    yield value, i
        return
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            yield message, "content"
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    yield part, "text"


class InputRules:
    def __init__(self, blocklist: str, redact: bool, phone_region: str) -> None:
        self.blocklist = parse_blocklist(blocklist)
        self.redactor: Callable[[str], str] | None = Redactor(phone_region) if redact else None

    def apply(self, plan: Plan, body: dict[str, Any], kind: str) -> None:
        """Raise a 400 naming the rule, or redact in place."""
        if kind == "chat" and plan.max_messages is not None:
            count = len(body.get("messages") or ())
            if count > plan.max_messages:
                raise InvalidRequest(
                    f"This request has {count} messages; the {plan.name} plan allows at most {plan.max_messages}.",
                    param="messages", code="too_many_messages",
                )
        slots = list(_text_slots(body, kind))
        if plan.max_prompt_chars is not None:
            chars = sum(len(container[index]) for container, index in slots)
            if chars > plan.max_prompt_chars:
                raise InvalidRequest(
                    f"The prompt is {chars} characters; the {plan.name} plan allows at most {plan.max_prompt_chars}.",
                    param={"chat": "messages", "embedding": "input"}.get(kind, "prompt"), code="prompt_too_long",
                )
        for container, index in slots:
            text = container[index]
            for pattern in self.blocklist:
                if pattern.search(text):
                    raise ContentBlocked(
                        "The request contains content this platform does not accept.", code="content_blocked"
                    )
            if self.redactor is not None:
                container[index] = self.redactor(text)

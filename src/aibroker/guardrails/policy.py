"""An organization's guardrails, compiled, and the per-process cache that serves them.

The hot path asks `GuardrailBook.policy(org)`: a dict lookup while the entry is fresh, one
small query when it is not (concurrent misses share it). A change made in this process is
seen at once; other processes see it within AIBROKER_GUARDRAILS_CACHE_SECONDS.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.errors import InvalidRequest
from aibroker.kit.singleflight import SingleFlight

ACTIONS = ("block", "redact", "flag")
MAX_RULES = 200
MAX_RULE_CHARS = 200


@dataclass(frozen=True, slots=True)
class Policy:
    redact_input_pii: bool = False
    redact_output_pii: bool = False
    moderate_input: bool = False
    moderate_output: bool = False
    action: str = "block"
    moderation_model: str | None = None
    rules: tuple[re.Pattern[str], ...] = field(default=(), repr=False)

    @property
    def active(self) -> bool:
        return self.redact_input_pii or self.redact_output_pii or self.moderate_input or self.moderate_output


OPEN = Policy()


def compile_rules(entries: list[str] | None, *, param: str = "rules") -> tuple[re.Pattern[str], ...]:
    """Words or phrases (whole words, any case), or `/regex/` entries; 400 naming a bad one."""
    patterns = []
    for entry in entries or ():
        text = entry.strip()
        if not text:
            continue
        if len(text) > 2 and text.startswith("/") and text.endswith("/"):
            try:
                patterns.append(re.compile(text[1:-1], re.IGNORECASE))
            except re.error as exc:
                raise InvalidRequest(f"The rule {entry!r} is not a valid regular expression: {exc}.", param=param,
                                     code="invalid_rule") from None
        else:
            patterns.append(re.compile(rf"(?<!\w){re.escape(text)}(?!\w)", re.IGNORECASE))
    return tuple(patterns)


def policy_of(row: Any) -> Policy:
    return Policy(
        redact_input_pii=row.redact_input_pii, redact_output_pii=row.redact_output_pii, moderate_input=row.moderate_input,
        moderate_output=row.moderate_output, action=row.action, moderation_model=row.moderation_model,
        rules=compile_rules(row.rules),
    )


@dataclass(slots=True)
class _Entry:
    policy: Policy
    expires_at: float


class GuardrailBook:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, cache_seconds: float) -> None:
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._cache: dict[str, _Entry] = {}
        self._loads: SingleFlight[str, _Entry] = SingleFlight()

    async def policy(self, organization_id: str) -> Policy:
        entry = self._cache.get(organization_id)
        if entry is None or entry.expires_at < time.monotonic():
            entry = await self._loads.run(organization_id, lambda: self._load(organization_id))
            self._cache[organization_id] = entry
        return entry.policy

    async def _load(self, organization_id: str) -> _Entry:
        from aibroker.models import GuardrailSettings

        async with self._sessions() as session:
            row = await session.scalar(select(GuardrailSettings).where(GuardrailSettings.organization_id == organization_id))
        return _Entry(policy_of(row) if row is not None else OPEN, time.monotonic() + self._cache_seconds)

    def forget(self, organization_id: str) -> None:
        self._cache.pop(organization_id, None)
        self._loads.forget(organization_id)

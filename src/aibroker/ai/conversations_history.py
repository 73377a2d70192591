"""How a conversation's history is fitted to the model's context, and its generated title.

The policy (docs/ai-workspace.md states it too):
1. The model's context window (catalog `context_length`; 8,192 when unknown) less the reply's
   reserve (`max_tokens`, else the broker's default cap within the model's output limit).
2. The system prompt and the new user message always go; if they alone do not fit, 400
   `conversation_message_too_long`.
3. Earlier turns are added newest first while they fit, at most MAX_TURNS of them; the
   oldest are dropped first. A kept history never starts with an assistant turn.
4. A turn costs its UTF-8 bytes / 3 + 8 tokens (chat text runs about 4 bytes a token:
   the estimate errs on the side of dropping a turn rather than overflowing the window).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aibroker.errors import InvalidRequest

DEFAULT_CONTEXT = 8192
MAX_TURNS = 200
PER_MESSAGE = 8
PER_REQUEST = 16
TITLE_CHARS = 60


def estimate(text: str) -> int:
    return -(-len(text.encode()) // 3) + PER_MESSAGE


def fit_history(
    system_prompt: str | None, turns: Sequence[tuple[str, str]], new_message: str, *, context_length: int, reserve: int,
) -> list[dict[str, Any]]:
    """The chat `messages`: system prompt, the newest turns that fit, the new user message.
    `turns` are (role, content), oldest first."""
    budget = (context_length or DEFAULT_CONTEXT) - reserve - PER_REQUEST - estimate(new_message)
    if system_prompt:
        budget -= estimate(system_prompt)
    if budget < 0:
        raise InvalidRequest(
            "This message (with the system prompt and room for the reply) does not fit the model's context; "
            "shorten it or lower max_tokens.", param="content", code="conversation_message_too_long",
        )
    kept: list[dict[str, Any]] = []
    for role, content in reversed(turns[-MAX_TURNS:]):
        cost = estimate(content)
        if cost > budget:
            break
        budget -= cost
        kept.append({"role": role, "content": content})
    kept.reverse()
    while kept and kept[0]["role"] != "user":
        kept.pop(0)
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*head, *kept, {"role": "user", "content": new_message}]


def title_from(text: str) -> str:
    """The first words of the first message: at most TITLE_CHARS characters, cut at a word."""
    flat = re.sub(r"\s+", " ", text).strip()
    if len(flat) <= TITLE_CHARS:
        return flat or "New conversation"
    cut = flat[:TITLE_CHARS].rsplit(" ", 1)[0] or flat[:TITLE_CHARS]
    return cut.rstrip(" ,.;:") + "…"

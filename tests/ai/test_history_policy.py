"""The conversation history policy and titles (pure functions: no database)."""

from __future__ import annotations

import pytest

from aibroker.ai.conversations_history import MAX_TURNS, estimate, fit_history, title_from
from aibroker.errors import InvalidRequest


def test_the_newest_turns_that_fit_are_kept_and_the_system_prompt_always_goes():
    turns = [("user" if i % 2 == 0 else "assistant", f"message {i} " + "x" * 300) for i in range(10)]
    each = estimate(turns[0][1])
    context = 16 + estimate("sys") + estimate("new") + 100 + 3 * each  # room for exactly three earlier turns
    messages = fit_history("sys", turns, "new", context_length=context, reserve=100)
    assert messages[0] == {"role": "system", "content": "sys"} and messages[-1] == {"role": "user", "content": "new"}
    kept = messages[1:-1]
    # three fit (turns 7, 8, 9), but a history never starts with an assistant turn: 7 is one, so 8 and 9 go.
    assert [m["content"].split()[1] for m in kept] == ["8", "9"]


def test_a_message_that_cannot_fit_is_refused_and_turns_are_capped():
    with pytest.raises(InvalidRequest) as refused:
        fit_history(None, [], "x" * 30_000, context_length=8192, reserve=100)
    assert refused.value.code == "conversation_message_too_long"
    turns = [("user", "hi"), ("assistant", "hello")] * MAX_TURNS
    assert len(fit_history(None, turns, "again", context_length=1_000_000, reserve=10)) == MAX_TURNS + 1


@pytest.mark.parametrize(("text", "title"), [
    ("  Hello   there\n friend ", "Hello there friend"),
    ("word " * 30, "word word word word word word word word word word word word…"),
    ("", "New conversation"),
])
def test_titles(text, title):
    assert title_from(text) == title

"""One place to ask the time, so tests can move it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable


def _real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_now: Callable[[], dt.datetime] = _real_now


def utcnow() -> dt.datetime:
    return _now()


def set_clock(now: Callable[[], dt.datetime] | None) -> None:
    """Tests only: replace the clock (None restores the real one)."""
    global _now
    _now = now or _real_now

"""Identifiers: time-ordered, url-safe, prefixed so a stray id says what it is."""

from __future__ import annotations

import random
import time

# Ids need uniqueness, not secrecy (keys and tokens use os.urandom / secrets): the fast
# PRNG saves a getrandom() system call per id on the request path.
_random = random.Random()


def new_id(prefix: str) -> str:
    # 16 hex digits of nanoseconds: ids sort by creation time (cursor pagination relies on it).
    return f"{prefix}_{time.time_ns():016x}{_random.getrandbits(48):012x}"


def new_request_id() -> str:
    return new_id("req")

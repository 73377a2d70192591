"""Job handlers, registered by name ("domain.verb"), and what a handler receives."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# Modules whose import registers handlers (a domain adds its tasks module here).
TASK_MODULES = [
    "aibroker.messaging.tasks", "aibroker.payments.tasks", "aibroker.batches.tasks", "aibroker.recordings.tasks",
    "aibroker.ai.alert_tasks",
]


class RetryLater(Exception):
    """A transient failure: run the job again after `delay` seconds (or the backoff)."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class GiveUp(Exception):
    """A permanent failure: retrying cannot help; the job goes to failed at once."""


@dataclass
class JobContext:
    """One run of one job. `session` is the job's transaction: the runner commits it together
    with the job's completion (services never commit). On SQLite it holds the write lock from
    its first statement, so make slow outside calls (AI, HTTP) before touching it and read
    what they need through `reads()`."""

    id: str
    type: str
    payload: dict[str, Any]
    organization_id: str | None
    attempts: int
    max_attempts: int
    session: AsyncSession
    services: Any
    reads: async_sessionmaker[AsyncSession]
    worker_id: str
    notes: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[JobContext], Awaitable[dict[str, Any] | None]]
DeadHandler = Callable[[AsyncSession, dict[str, Any], str], Awaitable[None]]


@dataclass(frozen=True)
class Registered:
    name: str
    run: Handler
    on_dead: DeadHandler | None = None


_handlers: dict[str, Registered] = {}


def register(name: str, *, on_dead: DeadHandler | None = None) -> Callable[[Handler], Handler]:
    """Decorator: `@register("messaging.send_whatsapp")`. `on_dead` runs when the job lands in failed."""

    def wrap(fn: Handler) -> Handler:
        _handlers[name] = Registered(name, fn, on_dead)
        return fn

    return wrap


def handler_for(name: str) -> Registered | None:
    load_task_modules()
    return _handlers.get(name)


def load_task_modules() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)  # cached after the first import


def registered_names() -> list[str]:
    load_task_modules()
    return sorted(_handlers)

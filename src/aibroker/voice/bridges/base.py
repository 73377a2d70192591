"""What the engine needs from an upstream: connect, take client events, yield server events
(OpenAI Realtime GA shapes, whatever the upstream speaks), close."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from aibroker.voice.protocol import SessionConfig

Event = dict


class UpstreamClosed(Exception):
    """The upstream connection ended (dropped, refused, or closed by the upstream)."""

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


class Bridge(Protocol):
    async def connect(self) -> None:
        """Open the upstream session with the current config (UpstreamClosed when it cannot)."""

    async def send(self, event: Event) -> None:
        """A checked client event (OpenAI Realtime); session.update is `update` instead."""

    async def update(self, config: SessionConfig) -> None:
        """The session's config changed (the engine answers session.updated itself)."""

    def events(self) -> AsyncIterator[Event]:
        """Server events in OpenAI Realtime GA shapes; raises UpstreamClosed when the upstream ends."""

    async def close(self) -> None:
        """Close the upstream connection (idempotent)."""


def websocket_url(base_url: str, path: str) -> str:
    """`base_url` (http[s]) as a ws[s] URL with `path` appended."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))

"""Streamed answers under output guardrails, between the provider's stream and the relay.

PII redaction only: text is held back until a safe cut (a newline, or the end of a
sentence), redacted, and passed on, so an e-mail address or a card number split across
chunks is still caught; a run of more than HOLD_MAX characters without such a cut is let go
up to its last space, keeping a TAIL the size of the longest thing redaction looks for.

Output moderation: the whole answer is read first (nothing is sent before it is judged), so
a blocked answer is a plain 400, not a stream cut halfway.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

HOLD_MAX = 512
TAIL = 80
_CUT = re.compile(r"[\n]|[.!?](?=\s)")


def _safe_cut(text: str, final: bool) -> int:
    """How much of `text` can be redacted and sent now."""
    if final:
        return len(text)
    cut = 0
    for match in _CUT.finditer(text):
        cut = match.end()
    if cut == 0 and len(text) > HOLD_MAX:
        space = text.rfind(" ", 0, len(text) - TAIL)
        cut = space + 1 if space >= 0 else len(text) - TAIL
    return cut


class RedactingStream:
    """Wraps (iterator, first chunk) of a chat stream; redacts each choice's content."""

    def __init__(
        self,
        upstream: tuple[AsyncIterator[dict[str, Any]], dict[str, Any]],
        redact: Callable[[str], str],
        on_done: Callable[[bool], None] | None = None,
    ) -> None:
        self.iterator, self.first = upstream
        self.redact = redact
        self.on_done = on_done  # told whether anything was redacted, before the stream ends
        self.pending: dict[int, str] = {}
        self.changed = False

    def _release(self, index: int, final: bool) -> str:
        text = self.pending.get(index, "")
        cut = _safe_cut(text, final)
        out, self.pending[index] = text[:cut], text[cut:]
        redacted = self.redact(out) if out else out
        self.changed |= redacted != out
        return redacted

    def _rewrite(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        choices = chunk.get("choices")
        if not choices:
            return chunk  # the usage chunk: passed as it is
        keep = False
        for choice in choices:
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            final = choice.get("finish_reason") is not None
            if isinstance(delta.get("content"), str) or final:
                self.pending[index] = self.pending.get(index, "") + (delta.get("content") or "")
                released = self._release(index, final)
                if released or final or "content" not in delta:
                    delta["content"] = released
                else:
                    delta.pop("content")
                choice["delta"] = delta
            if delta or final:
                keep = True
        return chunk if keep else None

    async def _chunks(self) -> AsyncIterator[dict[str, Any]]:
        chunk: dict[str, Any] | None = self.first
        while chunk is not None:
            out = self._rewrite(chunk)
            if out is not None:
                yield out
            try:
                chunk = await self.iterator.__anext__()
            except StopAsyncIteration:
                chunk = None
        leftover = {i: self._release(i, True) for i in list(self.pending)}
        leftover = {i: t for i, t in leftover.items() if t}
        if leftover:  # a stream that ended without finish_reason
            base = {k: self.first[k] for k in ("id", "object", "created", "model") if k in self.first}
            yield {**base, "choices": [{"index": i, "delta": {"content": t}, "finish_reason": None} for i, t in leftover.items()]}
        if self.on_done is not None:
            self.on_done(self.changed)

    async def open(self) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any]]:
        chunks = self._chunks()
        first = await chunks.__anext__()
        return chunks, first


async def read_whole(upstream: tuple[AsyncIterator[dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
    iterator, first = upstream
    chunks = [first]
    async for chunk in iterator:
        chunks.append(chunk)
    return chunks


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """A streamed answer as a completion body (for moderation): each choice's text."""
    texts: dict[int, list[str]] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                texts.setdefault(choice.get("index", 0), []).append(content)
    return {"choices": [{"index": i, "message": {"role": "assistant", "content": "".join(parts)}} for i, parts in sorted(texts.items())]}


def rewrite_chunks(chunks: list[dict[str, Any]], body: dict[str, Any]) -> None:
    """Put the (redacted) texts of `body` back into the chunks: each choice's first content
    delta carries its whole text, the others become empty."""
    texts = {c["index"]: c["message"]["content"] for c in body["choices"]}
    placed: set[int] = set()
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            index = choice.get("index", 0)
            if isinstance(delta.get("content"), str) and index in texts:
                delta["content"] = "" if index in placed else texts[index]
                placed.add(index)


async def replay(chunks: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for chunk in chunks:
        yield chunk

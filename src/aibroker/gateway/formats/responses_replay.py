"""A stored Response replayed as the typed SSE events a stream of it sends, for
`GET /v1/responses/{id}?stream=true` (OpenAI replays a response's events there; the SDKs use it
to resume a stream, `starting_after` the last sequence number they saw). Pure, no I/O.

The events are those `POST /v1/responses` with `stream: true` sends, in the same order and
numbered from 0: response.created, response.in_progress, per output item its added / delta /
done events, then response.completed (or response.incomplete / response.failed). A replay
sends each text part and each call's arguments as one delta: the stored response keeps the
whole text, not how the upstream chunked it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Event = tuple[str, dict[str, Any]]

TERMINAL = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}


def _item_events(item: dict[str, Any], index: int) -> Iterator[tuple[str, dict[str, Any]]]:
    where = {"item_id": item.get("id"), "output_index": index}
    if item.get("type") == "message":
        yield "response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress", "content": []}}
        for n, part in enumerate(item.get("content") or []):
            at = {**where, "content_index": n}
            if part.get("type") == "refusal":
                yield "response.content_part.added", {**at, "part": {"type": "refusal", "refusal": ""}}
                yield "response.refusal.delta", {**at, "delta": part.get("refusal") or ""}
                yield "response.refusal.done", {**at, "refusal": part.get("refusal") or ""}
            else:
                text = part.get("text") or ""
                yield "response.content_part.added", {**at, "part": {**part, "text": ""}}
                yield "response.output_text.delta", {**at, "delta": text, "logprobs": []}
                yield "response.output_text.done", {**at, "text": text, "logprobs": []}
            yield "response.content_part.done", {**at, "part": part}
    elif item.get("type") == "function_call":
        arguments = item.get("arguments") or ""
        yield "response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress", "arguments": ""}}
        yield "response.function_call_arguments.delta", {**where, "delta": arguments}
        yield "response.function_call_arguments.done", {**where, "name": item.get("name"), "arguments": arguments}
    else:  # an item kind the broker does not stream piecewise: added, then done
        yield "response.output_item.added", {"output_index": index, "item": item}
    yield "response.output_item.done", {"output_index": index, "item": item}


def replay(response: dict[str, Any], starting_after: int | None = None) -> list[Event]:
    """The stream of a stored `response`, each event with its `sequence_number`; only those
    numbered above `starting_after` when it is given."""
    snapshot = {**response, "status": "in_progress", "output": [], "usage": None, "completed_at": None,
                "incomplete_details": None, "error": None}
    snapshot.pop("aibroker", None)  # the cost belongs to the final event only, as on a live stream
    kinds: list[tuple[str, dict[str, Any]]] = [("response.created", {"response": snapshot}),
                                               ("response.in_progress", {"response": snapshot})]
    for index, item in enumerate(response.get("output") or []):
        kinds.extend(_item_events(item, index))
    kinds.append((TERMINAL.get(response.get("status") or "completed", "response.completed"), {"response": response}))
    events = [(kind, {"type": kind, "sequence_number": seq, **data}) for seq, (kind, data) in enumerate(kinds)]
    if starting_after is not None:
        events = [event for event in events if event[1]["sequence_number"] > starting_after]
    return events

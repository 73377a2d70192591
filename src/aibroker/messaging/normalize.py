"""Platform webhook payloads -> a flat list of events, one per message or status.

Each event carries the id that routes it to a connection (`account_key`), the id that makes
it unique (`external_id`, the inbox key) and a small normalized `data` dict. Our own sends
echoed back (Messenger/IG `is_echo`, TikTok `im_send_msg`) are dropped here.

Three steps, so that hostile bodies cost little and crash nothing: `load` (JSON, bounded
depth), `routing_ids` (a lenient look at the ids that name connections, for the shared route,
whose signature can only be checked once the connection is known) and `parse` (the shapes of
payloads.py, strictly: a malformed body is a 400, never a half-read one).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from aibroker.errors import InvalidRequest
from aibroker.messaging import payloads as p
from aibroker.ops.body import nesting_exceeds

MESSAGE, STATUS = "message", "status"
MAX_DEPTH = 32  # real payloads nest < 10 deep; the JSON column's encoder gives up near 1000
MALFORMED = "malformed_body"


@dataclass(slots=True)
class InboundEvent:
    kind: str  # message | status
    external_id: str
    account_key: str
    data: dict[str, Any]
    account_field: str = "account_key"  # the ChannelConnection column account_key matches
    raw: dict[str, Any] = field(default_factory=dict)


def malformed(reason: str) -> InvalidRequest:
    return InvalidRequest(f"Malformed webhook body: {reason}.", code=MALFORMED)


def load(raw_body: bytes) -> Any:
    """The JSON body. orjson refuses nesting past 1024 levels (its error is a 400 here, like any
    invalid JSON); this refuses past MAX_DEPTH."""
    try:
        body = orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        raise malformed(f"not valid JSON ({exc.args[0] if exc.args else exc})") from None
    if nesting_exceeds(body, MAX_DEPTH):
        raise malformed(f"nested deeper than {MAX_DEPTH} levels")
    return body


def _envelopes(body: Any) -> list[Any]:
    """Meta bodies are one object; some Instagram samples wrap it in an array."""
    return body if isinstance(body, list) else [body]


def _key(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) else None


def _items(value: Any, name: str) -> list[Any]:
    found = value.get(name) if isinstance(value, dict) else None
    return found if isinstance(found, list) else []


def routing_ids(channel: str, body: Any) -> set[tuple[str, str]]:
    """(ChannelConnection column, value) of every account the body names, read leniently (it is
    not verified yet): what cannot be read names nothing."""
    found: set[tuple[str, str]] = set()
    if channel == "tiktok":
        if isinstance(body, dict):
            business, client = _key(body.get("user_openid")), _key(body.get("client_key"))
            if business:
                found.add(("account_key", business))
            elif client:
                found.add(("tiktok_client_key", client))
        return found
    for envelope in _envelopes(body):
        for entry in _items(envelope, "entry"):
            if channel != "whatsapp":
                if isinstance(entry, dict) and _key(entry.get("id")):
                    found.add(("account_key", str(entry["id"])))
                continue
            for change in _items(entry, "changes"):
                value = change.get("value") if isinstance(change, dict) else None
                metadata = value.get("metadata") if isinstance(value, dict) else None
                phone = _key(metadata.get("phone_number_id")) if isinstance(metadata, dict) else None
                if phone:
                    found.add(("account_key", phone))
    return found


def _validate(model: type[BaseModel], value: Any) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        raise malformed(f"'{where}': {error['msg']}") from None


def parse(channel: str, body: Any) -> list[InboundEvent]:
    """Every event of a loaded body; 400 (`malformed_body`) when its shape is wrong anywhere."""
    if channel == "tiktok":
        if not isinstance(body, dict):
            raise malformed("a TikTok event is a JSON object")
        content = body.get("content")
        if isinstance(content, str):  # TikTok sends `content` as a JSON-encoded string
            body = {**body, "content": load(content.encode()) if content.strip() else None}
        return list(_tiktok(_validate(p.TTEnvelope, body)))
    envelopes = _envelopes(body)
    if not envelopes:
        raise malformed("an empty array")
    model = p.WAEnvelope if channel == "whatsapp" else p.MessengerEnvelope
    events: list[InboundEvent] = []
    for envelope in envelopes:
        if not isinstance(envelope, dict):
            raise malformed("a webhook body is a JSON object with an `entry` array")
        valid = _validate(model, envelope)
        events.extend(_whatsapp(valid) if channel == "whatsapp" else _messenger(valid))
    return events


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_unset=True)


def _text_of_whatsapp(message: p.WAMessage) -> str:
    kind = message.type or "text"
    if kind == "text":
        return (message.text.body if message.text else None) or ""
    part = (message.model_extra or {}).get(kind)
    if isinstance(part, dict):
        for key in ("caption", "body", "text", "title"):
            if isinstance(part.get(key), (str, int, float)) and part[key]:
                return str(part[key])
        reply = part.get("button_reply") or part.get("list_reply")
        if isinstance(reply, dict) and isinstance(reply.get("title"), str) and reply["title"]:
            return reply["title"]
    return f"[{kind}]"


def _whatsapp(body: p.WAEnvelope) -> Iterator[InboundEvent]:
    for entry in body.entry:
        for change in entry.changes or []:
            value = change.value or p.WAValue()
            phone_number_id = (value.metadata.phone_number_id if value.metadata else None) or ""
            names = {c.wa_id: c.profile.name if c.profile else None for c in value.contacts or []}
            for message in value.messages or []:
                sender = message.from_ or message.user_id or ""
                yield InboundEvent(MESSAGE, message.id, phone_number_id, {
                    "user_id": sender, "phone": message.from_, "name": names.get(sender),
                    "text": _text_of_whatsapp(message), "type": message.type or "text",
                    "timestamp": message.timestamp, "waba_id": entry.id,
                }, raw=_dump(message))
            for status in value.statuses or []:
                yield InboundEvent(STATUS, f"{status.id}:{status.status}", phone_number_id, {
                    "message_external_id": status.id, "status": status.status,
                    "timestamp": status.timestamp, "errors": status.errors, "user_id": status.recipient_id,
                }, raw=_dump(status))


def _ms(value: float | None) -> float | None:
    return value / 1000 if value is not None else None


def _messenger(body: p.MessengerEnvelope) -> Iterator[InboundEvent]:
    for entry in body.entry:
        account = entry.id
        for event in entry.messaging or []:
            sender = (event.sender.id if event.sender else None) or ""
            timestamp = _ms(event.timestamp)
            message = event.message
            if message is not None:
                if message.is_echo or message.is_deleted:
                    continue
                text = message.text or ("[attachment]" if message.attachments else "[unsupported]")
                yield InboundEvent(MESSAGE, message.mid, account, {
                    "user_id": sender, "text": text, "timestamp": timestamp, "type": "text",
                }, raw=_dump(event))
            elif event.delivery is not None:
                delivery, mids = event.delivery, event.delivery.mids or []
                watermark = f"{delivery.watermark:.0f}" if delivery.watermark is not None else None
                yield InboundEvent(STATUS, f"delivery:{account}:{sender}:{watermark}:{','.join(mids)}"[:255], account, {
                    "status": "delivered", "user_id": sender, "mids": mids,
                    "watermark": _ms(delivery.watermark), "timestamp": timestamp,
                }, raw=_dump(event))
            elif event.read is not None:
                read = event.read
                mark = f"{read.watermark:.0f}" if read.watermark is not None else read.mid
                yield InboundEvent(STATUS, f"read:{account}:{sender}:{mark}"[:255], account, {
                    "status": "read", "user_id": sender, "mids": [read.mid] if read.mid else [],
                    "watermark": _ms(read.watermark), "timestamp": timestamp,
                }, raw=_dump(event))


def _tiktok(body: p.TTEnvelope) -> Iterator[InboundEvent]:
    content = body.content or p.TTContent()
    business_id = body.user_openid or ""
    account, field_name = (business_id, "account_key") if business_id else (body.client_key or "", "tiktok_client_key")
    if body.event in ("im_receive_msg", "direct_message.receive"):
        sender = (content.from_user.id if content.from_user else None) or content.open_id
        recipient = content.to_user.id if content.to_user else None
        if business_id and recipient and recipient != business_id:
            return  # a message we sent (direction is by to_user)
        if not content.message_id:
            raise malformed("'content.message_id': a received message needs its id")
        text = (content.text.body if content.text else None) or (content.message_content.text if content.message_content else None)
        stamp = _ms(content.timestamp) if content.timestamp is not None else body.create_time
        yield InboundEvent(MESSAGE, content.message_id, account, {
            "user_id": sender or "", "name": content.from_, "text": text or f"[{content.type or 'message'}]",
            "thread_id": content.conversation_id, "type": content.type or content.message_type or "text",
            "timestamp": stamp,
        }, account_field=field_name, raw=_dump(body))
    elif body.event == "im_mark_read_msg":
        thread = content.conversation_id
        mark = f"{content.timestamp:.0f}" if content.timestamp is not None else f"{body.create_time or 0:.0f}"
        yield InboundEvent(STATUS, f"read:{thread}:{mark}", account, {
            "status": "read", "thread_id": thread, "user_id": content.from_user.id if content.from_user else None,
            "timestamp": body.create_time,
        }, account_field=field_name, raw=_dump(body))

"""Platform webhook payloads -> a flat list of events, one per message or status.

Each event carries the id that routes it to a connection (`account_key`), the id that makes
it unique (`external_id`, the inbox key) and a small normalized `data` dict. Our own sends
echoed back (Messenger/IG `is_echo`, TikTok `im_send_msg`) are dropped here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aibroker.errors import InvalidRequest

MESSAGE, STATUS = "message", "status"


@dataclass(slots=True)
class InboundEvent:
    kind: str  # message | status
    external_id: str
    account_key: str
    data: dict[str, Any]
    account_field: str = "account_key"  # the ChannelConnection column account_key matches
    raw: dict[str, Any] = field(default_factory=dict)


def parse(channel: str, raw_body: bytes) -> list[InboundEvent]:
    try:
        body = json.loads(raw_body)
    except ValueError as exc:
        raise InvalidRequest("The webhook body is not valid JSON.") from exc
    if channel == "whatsapp":
        return list(_whatsapp(body))
    if channel in ("facebook", "instagram"):
        return list(_messenger(body))
    return list(_tiktok(body))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text_of_whatsapp(message: dict[str, Any]) -> str:
    kind = message.get("type") or "text"
    if kind == "text":
        return str((message.get("text") or {}).get("body") or "")
    part = message.get(kind) or {}
    if isinstance(part, dict):
        for key in ("caption", "body", "text", "title"):
            if part.get(key):
                return str(part[key])
        reply = part.get("button_reply") or part.get("list_reply") or {}
        if reply.get("title"):
            return str(reply["title"])
    return f"[{kind}]"


def _whatsapp(body: dict[str, Any]) -> Any:
    entries = body if isinstance(body, list) else _list(body.get("entry"))
    for entry in entries:
        for change in _list(entry.get("changes")):
            value = change.get("value") or {}
            phone_number_id = str((value.get("metadata") or {}).get("phone_number_id") or "")
            names = {c.get("wa_id"): (c.get("profile") or {}).get("name") for c in _list(value.get("contacts"))}
            for message in _list(value.get("messages")):
                sender = message.get("from") or message.get("user_id") or ""
                yield InboundEvent(MESSAGE, str(message.get("id")), phone_number_id, {
                    "user_id": str(sender), "phone": message.get("from"), "name": names.get(sender),
                    "text": _text_of_whatsapp(message), "type": message.get("type") or "text",
                    "timestamp": _seconds(message.get("timestamp")), "waba_id": entry.get("id"),
                }, raw=message)
            for status in _list(value.get("statuses")):
                yield InboundEvent(STATUS, f"{status.get('id')}:{status.get('status')}", phone_number_id, {
                    "message_external_id": str(status.get("id")), "status": status.get("status"),
                    "timestamp": _seconds(status.get("timestamp")), "errors": status.get("errors"),
                    "user_id": status.get("recipient_id"),
                }, raw=status)


def _messenger(body: Any) -> Any:
    entries = body if isinstance(body, list) else _list(body.get("entry"))  # IG samples may wrap in a list
    for entry in entries:
        account = str(entry.get("id") or "")
        for event in _list(entry.get("messaging")):
            sender = str((event.get("sender") or {}).get("id") or "")
            timestamp = _seconds(event.get("timestamp"), millis=True)
            message = event.get("message")
            if isinstance(message, dict):
                if message.get("is_echo") or message.get("is_deleted"):
                    continue
                text = message.get("text") or ("[attachment]" if message.get("attachments") else "[unsupported]")
                yield InboundEvent(MESSAGE, str(message.get("mid")), account, {
                    "user_id": sender, "text": str(text), "timestamp": timestamp, "type": "text",
                }, raw=event)
            elif isinstance(event.get("delivery"), dict):
                delivery = event["delivery"]
                watermark = delivery.get("watermark")
                yield InboundEvent(STATUS, f"delivery:{account}:{sender}:{watermark}:{','.join(delivery.get('mids') or [])}"[:255], account, {
                    "status": "delivered", "user_id": sender, "mids": delivery.get("mids") or [],
                    "watermark": _seconds(watermark, millis=True), "timestamp": timestamp,
                }, raw=event)
            elif isinstance(event.get("read"), dict):
                read = event["read"]
                mark = read.get("watermark") or read.get("mid")
                yield InboundEvent(STATUS, f"read:{account}:{sender}:{mark}"[:255], account, {
                    "status": "read", "user_id": sender, "mids": [read["mid"]] if read.get("mid") else [],
                    "watermark": _seconds(read.get("watermark"), millis=True), "timestamp": timestamp,
                }, raw=event)


def _tiktok(body: dict[str, Any]) -> Any:
    event = body.get("event")
    content = body.get("content")
    if isinstance(content, str):  # TikTok sends `content` as a JSON-encoded string
        try:
            content = json.loads(content)
        except ValueError:
            content = {}
    content = content if isinstance(content, dict) else {}
    business_id = str(body.get("user_openid") or "")
    account, field_name = (business_id, "account_key") if business_id else (str(body.get("client_key") or ""), "tiktok_client_key")
    if event in ("im_receive_msg", "direct_message.receive"):
        sender = (content.get("from_user") or {}).get("id") or content.get("open_id")
        recipient = (content.get("to_user") or {}).get("id")
        if business_id and recipient and recipient != business_id:
            return  # a message we sent (direction is by to_user)
        text = (content.get("text") or {}).get("body") or (content.get("message_content") or {}).get("text")
        stamp = content.get("timestamp")
        yield InboundEvent(MESSAGE, str(content.get("message_id")), account, {
            "user_id": str(sender or ""), "name": content.get("from"), "text": str(text or f"[{content.get('type') or 'message'}]"),
            "thread_id": content.get("conversation_id"), "type": content.get("type") or content.get("message_type") or "text",
            "timestamp": _seconds(stamp, millis=True) if stamp else _seconds(body.get("create_time")),
        }, account_field=field_name, raw=body)
    elif event == "im_mark_read_msg":
        thread = content.get("conversation_id")
        yield InboundEvent(STATUS, f"read:{thread}:{content.get('timestamp') or body.get('create_time')}", account, {
            "status": "read", "thread_id": thread, "user_id": (content.get("from_user") or {}).get("id"),
            "timestamp": _seconds(body.get("create_time")),
        }, account_field=field_name, raw=body)


def _seconds(value: Any, *, millis: bool = False) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number / 1000 if millis else number

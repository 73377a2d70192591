"""The shapes of platform webhook bodies (wire-formats.md §2-§5), checked before any field is read.

Only the fields we read are declared; everything else is kept as sent (`extra="allow"`), so a
new platform field never breaks intake, while a wrong type where we read (a number where an
object belongs, `entry: [1]`, a null id) is a 400 instead of a crash. Ids are strings (a
bare integer is accepted and kept as its digits); timestamps are numbers or numeric strings.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_ID_LENGTH = 255
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z: later is not a time a datetime can hold


def _id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("must be a string id")
    text = str(value)
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"must be at most {MAX_ID_LENGTH} characters")
    return text


def _stamp(limit: int) -> Any:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError("must be a number or a numeric string")
        try:
            number = float(value)
        except ValueError:
            raise ValueError("must be a number or a numeric string") from None
        if not math.isfinite(number) or not 0 <= number <= limit:
            raise ValueError("is not a plausible timestamp")
        return number

    return BeforeValidator(check)


Id = Annotated[str, BeforeValidator(_id)]
Seconds = Annotated[float, _stamp(MAX_SECONDS)]  # Unix seconds
Millis = Annotated[float, _stamp(MAX_SECONDS * 1000)]  # Unix milliseconds


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# -- WhatsApp Cloud API (§2) ---------------------------------------------------------------

class WAText(_Open):
    body: str | None = None


class WAMessage(_Open):
    id: Id
    from_: Id | None = Field(default=None, alias="from")
    user_id: Id | None = None
    timestamp: Seconds | None = None
    type: str | None = None
    text: WAText | None = None


class WAStatus(_Open):
    id: Id
    status: str
    timestamp: Seconds | None = None
    recipient_id: Id | None = None
    errors: list[dict[str, Any]] | None = None


class WAProfile(_Open):
    name: str | None = None


class WAContact(_Open):
    wa_id: Id | None = None
    profile: WAProfile | None = None


class WAMetadata(_Open):
    phone_number_id: Id | None = None


class WAValue(_Open):
    metadata: WAMetadata | None = None
    contacts: list[WAContact] | None = None
    messages: list[WAMessage] | None = None
    statuses: list[WAStatus] | None = None


class WAChange(_Open):
    field: str | None = None
    value: WAValue | None = None


class WAEntry(_Open):
    id: Id | None = None
    changes: list[WAChange] | None = None


class WAEnvelope(_Open):
    object: str | None = None
    entry: list[WAEntry]


# -- Messenger and Instagram (§3, §4) ------------------------------------------------------

class Party(_Open):
    id: Id | None = None


class MessengerMessage(_Open):
    mid: Id
    text: str | None = None
    is_echo: bool | None = None
    is_deleted: bool | None = None
    attachments: list[Any] | None = None


class Delivery(_Open):
    mids: list[Id] | None = None
    watermark: Millis | None = None


class Read(_Open):
    watermark: Millis | None = None
    mid: Id | None = None


class MessengerEvent(_Open):
    sender: Party | None = None
    recipient: Party | None = None
    timestamp: Millis | None = None
    message: MessengerMessage | None = None
    delivery: Delivery | None = None
    read: Read | None = None


class MessengerEntry(_Open):
    id: Id
    time: Millis | None = None
    messaging: list[MessengerEvent] | None = None


class MessengerEnvelope(_Open):
    object: str | None = None
    entry: list[MessengerEntry]


# -- TikTok Business Messaging (§5) --------------------------------------------------------

class TTUser(_Open):
    id: Id | None = None


class TTText(_Open):
    body: str | None = None


class TTMessageContent(_Open):
    text: str | None = None


class TTContent(_Open):
    conversation_id: Id | None = None
    message_id: Id | None = None
    timestamp: Millis | None = None
    type: str | None = None
    message_type: str | None = None
    text: TTText | None = None
    message_content: TTMessageContent | None = None
    from_: str | None = Field(default=None, alias="from")
    from_user: TTUser | None = None
    to_user: TTUser | None = None
    open_id: Id | None = None


class TTEnvelope(_Open):
    client_key: Id | None = None
    event: str
    create_time: Seconds | None = None
    user_openid: Id | None = None
    content: TTContent | None = None  # on the wire a JSON-encoded string: decoded before validation

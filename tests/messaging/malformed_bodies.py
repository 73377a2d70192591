"""Hostile webhook bodies: not JSON, the wrong JSON, too deep, and every valid payload of
support.inbound with one field at a time replaced by a value of the wrong type."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.messaging.support import inbound

GENERIC: list[bytes] = [
    b"", b"not json", b"\xff\xfe\x00", b"[1]", b'"x"', b"null", b"1", b"true", b"[]", b"{}", b"[[]]", b"[null]",
    b'{"entry":[1]}', b'{"entry":[{"changes":[1]}]}', b'{"entry":[{"id":"1","messaging":[1]}]}', b'{"entry":null}',
    b'{"entry":"x"}', b'{"entry":{}}', b'{"event":5}', b'{"event":"im_receive_msg","content":7}',
    b"[" * 100_000 + b"]" * 100_000,  # orjson stops at 1024 levels
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"[" * 1000 + b"]" * 1000,  # readable, but deeper than any payload
]

BAD = {  # wrong-typed values: none of them is valid where the payload has a field
    "object": [1, "x", [], True, 1.5],
    "list": ["x", 1, {}, True],
    "id": [{}, [], True, 1.5],
    "text": [{}, [], True],
    "stamp": ["abc", {}, [], -5, 1e30, True],
    "flag": ["maybe", {}, []],
}

META_FIELDS: dict[str, list[tuple[tuple[Any, ...], str]]] = {
    "whatsapp": [
        (("entry",), "list"), (("entry", 0), "object"), (("entry", 0, "id"), "id"), (("entry", 0, "changes"), "list"),
        (("entry", 0, "changes", 0), "object"), (("entry", 0, "changes", 0, "field"), "text"),
        (("entry", 0, "changes", 0, "value"), "object"),
        (("entry", 0, "changes", 0, "value", "metadata"), "object"),
        (("entry", 0, "changes", 0, "value", "metadata", "phone_number_id"), "id"),
        (("entry", 0, "changes", 0, "value", "contacts"), "list"),
        (("entry", 0, "changes", 0, "value", "contacts", 0), "object"),
        (("entry", 0, "changes", 0, "value", "contacts", 0, "wa_id"), "id"),
        (("entry", 0, "changes", 0, "value", "contacts", 0, "profile"), "object"),
        (("entry", 0, "changes", 0, "value", "contacts", 0, "profile", "name"), "text"),
        (("entry", 0, "changes", 0, "value", "messages"), "list"),
        (("entry", 0, "changes", 0, "value", "messages", 0), "object"),
        (("entry", 0, "changes", 0, "value", "messages", 0, "id"), "id"),
        (("entry", 0, "changes", 0, "value", "messages", 0, "from"), "id"),
        (("entry", 0, "changes", 0, "value", "messages", 0, "timestamp"), "stamp"),
        (("entry", 0, "changes", 0, "value", "messages", 0, "type"), "text"),
        (("entry", 0, "changes", 0, "value", "messages", 0, "text"), "object"),
        (("entry", 0, "changes", 0, "value", "messages", 0, "text", "body"), "text"),
    ],
    "messenger": [
        (("entry",), "list"), (("entry", 0), "object"), (("entry", 0, "id"), "id"), (("entry", 0, "time"), "stamp"),
        (("entry", 0, "messaging"), "list"), (("entry", 0, "messaging", 0), "object"),
        (("entry", 0, "messaging", 0, "sender"), "object"), (("entry", 0, "messaging", 0, "sender", "id"), "id"),
        (("entry", 0, "messaging", 0, "recipient"), "object"), (("entry", 0, "messaging", 0, "timestamp"), "stamp"),
        (("entry", 0, "messaging", 0, "message"), "object"), (("entry", 0, "messaging", 0, "message", "mid"), "id"),
        (("entry", 0, "messaging", 0, "message", "text"), "text"),
        (("entry", 0, "messaging", 0, "message", "is_echo"), "flag"),
    ],
}
TIKTOK_FIELDS: list[tuple[tuple[Any, ...], str]] = [
    (("event",), "text"), (("user_openid",), "id"), (("client_key",), "id"), (("create_time",), "stamp"),
    (("content",), "object"), (("content", "message_id"), "id"), (("content", "conversation_id"), "id"),
    (("content", "timestamp"), "stamp"), (("content", "type"), "text"), (("content", "text"), "object"),
    (("content", "text", "body"), "text"), (("content", "from_user"), "object"), (("content", "from_user", "id"), "id"),
    (("content", "to_user"), "object"), (("content", "from"), "text"),
]


def _replace(payload: Any, path: tuple[Any, ...], value: Any) -> Any:
    mutated = copy.deepcopy(payload)
    node = mutated
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return mutated


def _missing(payload: Any, path: tuple[Any, ...]) -> Any:
    mutated = copy.deepcopy(payload)
    node = mutated
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return mutated


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=True).encode()


def malformed(channel: str) -> list[tuple[str, bytes]]:
    """(label, body) of every hostile body for one channel."""
    # (a Messenger-only field on a WhatsApp body is a field WhatsApp does not have: ignored)
    generic = [b for b in GENERIC if channel != "whatsapp" or b"messaging" not in b]
    cases = [(f"generic:{body[:24]!r}", body) for body in generic]
    payload, _ = inbound(channel, "hola")
    if channel == "tiktok":
        content = json.loads(payload["content"])
        for path, kind in TIKTOK_FIELDS:
            for value in BAD[kind]:
                if path[0] == "content" and len(path) > 1:
                    mutated = {**payload, "content": json.dumps(_replace(content, path[1:], value))}
                else:
                    mutated = _replace(payload, path, value)
                cases.append((f"{'.'.join(map(str, path))}={value!r}", _encode(mutated)))
        for raw_content in ("not json", "[1]", '"x"', "", "{" * 40 + "}" * 40):
            cases.append((f"content={raw_content[:12]!r}", _encode({**payload, "content": raw_content})))
        cases.append(("no message_id", _encode({**payload, "content": json.dumps(_missing(content, ("message_id",)))})))
        cases.append(("no event", _encode(_missing(payload, ("event",)))))
    else:
        for path, kind in META_FIELDS["whatsapp" if channel == "whatsapp" else "messenger"]:
            for value in BAD[kind]:
                cases.append((f"{'.'.join(map(str, path))}={value!r}", _encode(_replace(payload, path, value))))
        required = ("entry", 0, "changes", 0, "value", "messages", 0, "id") if channel == "whatsapp" else ("entry", 0, "id")
        cases.append(("required id missing", _encode(_missing(payload, required))))
        deep: Any = 1
        for _ in range(40):
            deep = [deep]
        cases.append(("deep extra field", _encode({**payload, "extra": deep})))
        cases.append(("array of bad envelopes", _encode([payload, 1])))
    return cases


def post_without_end(port: int, path: str, headers: dict[str, str], *, send: int, deadline: float = 15.0) -> bytes:
    """POST a chunked body of which only `send` bytes ever leave (the final chunk never does),
    and return what the server answers meanwhile. A server that reads the whole body before
    answering never answers: the socket times out and this returns b""."""
    import socket
    import threading

    sock = socket.create_connection(("127.0.0.1", port), timeout=deadline)
    head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    chunk = b"[" * 65536

    def feed() -> None:
        try:
            sock.sendall(head.encode())
            sent = 0
            while sent < send:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed: what we wanted to know

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    answer = b""
    try:
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except TimeoutError:
        pass
    finally:
        sock.close()
        feeder.join(timeout=5)
    return answer

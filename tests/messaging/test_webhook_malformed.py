"""Every hostile body on every channel webhook route is a 4xx and stores nothing, signed or not:
401 unsigned, 403 forged, 400 signed but malformed (the shared route, which finds the
connection inside the body, answers 403 when the body names no connection to verify with)."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from aibroker.messaging.signatures import meta_signature, tiktok_signature
from tests.messaging.malformed_bodies import malformed
from tests.messaging.support import META_SECRET, TIKTOK_SECRET, connect, inbound

CHANNELS = ["whatsapp", "instagram", "facebook", "tiktok"]


def _headers(channel: str, raw: bytes, secret: str | None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if secret is None:
        return headers
    if channel == "tiktok":
        headers["tiktok-signature"] = tiktok_signature(raw, secret, int(time.time()))
    else:
        headers["x-hub-signature-256"] = meta_signature(raw, secret)
    return headers


@pytest.mark.parametrize("channel", CHANNELS)
def test_malformed_bodies_are_4xx_on_every_route_and_store_nothing(broker, channel):
    connect(broker, broker.create_org("Acme", credit="10", slug="acme")["api_key"], channel)
    good = META_SECRET if channel != "tiktok" else TIKTOK_SECRET
    wrong: Counter[str] = Counter()
    cases = malformed(channel)
    with broker.client() as client:
        for label, raw in cases:
            for route in (f"/api/webhook/{channel}/acme", f"/api/webhook/{channel}"):
                unsigned = client.post(route, content=raw, headers=_headers(channel, raw, None))
                forged = client.post(route, content=raw, headers=_headers(channel, raw, "not-the-secret"))
                signed = client.post(route, content=raw, headers=_headers(channel, raw, good))
                got = (unsigned.status_code, forged.status_code, signed.status_code)
                shared = route == f"/api/webhook/{channel}"
                expected_ok = (got[0] == 401 and got[1] in (400, 403) and got[2] in (400, 403)) if shared else got == (401, 403, 400)
                if not expected_ok or any("error" not in r.json() for r in (unsigned, forged, signed)):
                    wrong[f"{route} {label}: {got} {signed.text[:160]}"] += 1
    assert not wrong, "\n".join(list(wrong)[:30])
    assert len(cases) > 60
    assert broker.scalar("select count(*) from webhook_events") == 0
    assert broker.scalar("select count(*) from jobs") == 0


@pytest.mark.parametrize("channel", CHANNELS)
def test_shared_route_checks_the_named_connection_before_the_shape(broker, channel):
    """On the shared route a malformed body that names a connection is verified with that
    connection's secret first: forged 403, signed 400."""
    acme = broker.create_org("Acme", credit="10", slug="acme")
    connect(broker, acme["api_key"], channel)
    payload, _ = inbound(channel, "hola")
    if channel == "tiktok":
        payload["content"] = "[1]"
    elif channel == "whatsapp":
        payload["entry"][0]["changes"][0]["value"]["messages"] = [1]
    else:
        payload["entry"][0]["messaging"] = [{"message": "x"}]
    raw = json.dumps(payload).encode()
    good = META_SECRET if channel != "tiktok" else TIKTOK_SECRET
    with broker.client() as client:
        forged = client.post(f"/api/webhook/{channel}", content=raw, headers=_headers(channel, raw, "nope"))
        signed = client.post(f"/api/webhook/{channel}", content=raw, headers=_headers(channel, raw, good))
        unsigned = client.post(f"/api/webhook/{channel}", content=raw, headers=_headers(channel, raw, None))
    assert (unsigned.status_code, forged.status_code, signed.status_code) == (401, 403, 400)
    assert signed.json()["error"]["code"] == "malformed_body"
    assert broker.scalar("select count(*) from webhook_events") == 0


@pytest.mark.parametrize("channel", CHANNELS)
def test_hostile_signature_headers_are_403(broker, channel):
    acme = broker.create_org("Acme", credit="10", slug="acme")
    connect(broker, acme["api_key"], channel)
    raw = json.dumps(inbound(channel, "hola")[0]).encode()
    name = "tiktok-signature" if channel == "tiktok" else "x-hub-signature-256"
    values = [b"sha256=\xe9\xe9", b"sha256=", b"sha256", b"t=" + b"9" * 5000 + b",s=00", "t=\u00b2,s=00".encode("latin-1"),
              b"t=1,s=\xe9", b"t=,s=", b",,,", b"s=" + b"0" * 64]
    with broker.client() as client:
        statuses = {value[:20]: [client.post(route, content=raw, headers={name: value, "content-type": "application/json"}).status_code
                                 for route in (f"/api/webhook/{channel}/acme", f"/api/webhook/{channel}")] for value in values}
    assert statuses == {value[:20]: [403, 403] for value in values}
    assert broker.scalar("select count(*) from webhook_events") == 0

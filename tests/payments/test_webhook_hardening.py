"""Payment webhooks under hostile input: every malformed body is a 4xx that stores and credits
nothing, signed or not; bodies stop at the size limit while being read; a Mercado Pago
notification acts only on the id its signature covers, and only while its `ts` is fresh."""

from __future__ import annotations

import json
import time

import pytest

from aibroker.models import LedgerEntry, PaymentEvent
from tests.fakes.mercadopago_api import sign as mp_sign
from tests.fakes.stripe_api import event, sign
from tests.messaging.malformed_bodies import GENERIC, post_without_end
from tests.support.accounts import MP_WEBHOOK_SECRET, WEBHOOK_SECRET, bearer, signup

URLS = {"successUrl": "https://app.example/ok", "cancelUrl": "https://app.example/cancel"}
MP_PATH = "/api/payments/mercadopago/webhook"


@pytest.fixture
def owner(broker):
    return signup(broker, "payer@example.com", organization_name="Payer Inc")


def _nothing_happened(broker) -> None:
    assert broker.rows(PaymentEvent) == []
    broker.flush()
    assert broker.rows(LedgerEntry, LedgerEntry.kind == "recharge") == []


def _stripe_bodies(org_id: str) -> list[tuple[str, bytes]]:
    session = {"id": "cs_1", "object": "checkout.session", "mode": "payment", "payment_status": "paid", "client_reference_id": org_id,
               "payment_intent": "pi_1", "metadata": {"kind": "wallet_recharge", "amount_micros": "5000000", "organization_id": org_id}}
    invoice = {"id": "in_1", "subscription": "sub_1", "customer": "cus_1", "lines": {"data": [{"period": {"end": 1767225600}}]}}
    subscription = {"id": "sub_1", "status": "active", "customer": "cus_1", "metadata": {"plan": "starter", "organization_id": org_id},
                    "items": {"data": [{"current_period_end": 1767225600}]}}
    wrong = [1, "x", [], {}, True, None, -1, 10**30]
    cases = [(f"generic {b[:20]!r}", b) for b in GENERIC]
    for kind, obj, fields in (
        ("checkout.session.completed", session, ["id", "client_reference_id", "payment_status", "payment_intent", "metadata", "mode"]),
        ("invoice.paid", invoice, ["id", "subscription", "customer", "lines", "period_end", "subscription_details", "parent"]),
        ("customer.subscription.updated", subscription, ["id", "status", "metadata", "items", "current_period_end", "customer"]),
    ):
        for name in fields:
            for value in wrong:
                if value is None and name != "id":
                    continue  # null is how Stripe says "none" for optional fields
                if isinstance(value, str) and name not in ("metadata", "lines", "items", "period_end", "current_period_end", "subscription_details", "parent"):
                    continue  # a string is the right type there
                if isinstance(value, dict) and name in ("metadata", "lines", "items", "subscription_details", "parent"):
                    continue  # ditto, an object
                if value == 1 and not isinstance(value, bool) and name in ("period_end", "current_period_end"):
                    continue  # a time
                cases.append((f"{kind} {name}={value!r}", event(kind, {**obj, name: value}, event_id=f"evt_{len(cases)}")))
        if "metadata" in fields:
            cases.append((f"{kind} metadata values", event(kind, {**obj, "metadata": {"organization_id": [org_id]}}, event_id=f"evt_{len(cases)}")))
    details = {**invoice, "subscription_details": {"metadata": {"plan": 5}}}
    cases.append(("invoice subscription_details.metadata", event("invoice.paid", details, event_id="evt_details")))
    lines = {**invoice, "lines": {"data": [1]}}
    cases.append(("invoice lines.data=[1]", event("invoice.paid", lines, event_id="evt_lines")))
    cases.append(("invoice period.end", event("invoice.paid", {**invoice, "lines": {"data": [{"period": {"end": "soon"}}]}}, event_id="evt_end")))
    for created in ("x", 10**30, -5, [1]):
        cases.append((f"created={created!r}", event("checkout.session.completed", session, event_id=f"evt_c{created!r}", created=created)))
    cases.append(("long id", event("checkout.session.completed", session, event_id="evt_" + "x" * 300)))
    cases.append(("deep", event("checkout.session.completed", {**session, "deep": json.loads("[" * 100 + "]" * 100)}, event_id="evt_deep")))
    for top in (b'{"id":"evt","type":"checkout.session.completed","data":[]}', b'{"id":1,"type":"x","data":{"object":{}}}',
                b'{"id":"evt","type":null,"data":{"object":{}}}', b'{"id":"evt","type":"x","data":{"object":[]}}'):
        cases.append((f"top {top[:30]!r}", top))
    return cases


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_stripe_malformed_bodies_are_4xx_signed_or_not(broker, owner):
    wrong = []
    cases = _stripe_bodies(owner["organization"]["id"])
    with broker.client() as http:
        for label, raw in cases:
            for kind, signature in (("unsigned", None), ("forged", sign(raw, "whsec_not_it")), ("signed", sign(raw, WEBHOOK_SECRET))):
                headers = {"content-type": "application/json", **({"stripe-signature": signature} if signature else {})}
                response = http.post("/api/payments/webhook", content=raw, headers=headers)
                expected = {{"unsigned": "missing_signature", "forged": "invalid_signature", "signed": "malformed_event"}[kind]}
                if kind != "unsigned" and not _utf8(raw):  # Stripe signs UTF-8 text: other bytes cannot be verified
                    expected.add("invalid_signature")
                if response.status_code != 400 or response.json().get("error", {}).get("code") not in expected:
                    wrong.append(f"{kind} {label}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong[:30])
    assert len(cases) > 60
    _nothing_happened(broker)


def _mp_post(http, raw: bytes, *, data_id: str | None, signed_id: str | None = "same", ts: int | None = None,
             secret: str = MP_WEBHOOK_SECRET, request_id: str = "req-1"):
    signed_id = data_id if signed_id == "same" else signed_id
    headers = {"content-type": "application/json", "x-request-id": request_id,
               "x-signature": mp_sign(data_id=signed_id, request_id=request_id, secret=secret, ts=ts)}
    query = f"?data.id={data_id}&type=payment" if data_id is not None else "?type=payment"
    return http.post(MP_PATH + query, content=raw, headers=headers)


def _mp_payment(broker, owner, fake_mp) -> str:
    with broker.client() as http:
        created = http.post("/api/payments/checkout", json={"provider": "mercadopago", "amount": "15.00", **URLS},
                            headers=bearer(owner["access_token"])).json()
    return fake_mp.pay(created["id"])


def _mp_body(payment_id: str | int) -> bytes:
    return json.dumps({"id": 1, "type": "payment", "action": "payment.updated", "data": {"id": payment_id}}).encode()


def test_mercadopago_malformed_bodies_are_4xx_signed_or_not(broker, owner, fake_mp):
    payment_id = _mp_payment(broker, owner, fake_mp)
    # Not JSON, not an object, too deep (an empty body, or any object, is a valid notification body).
    bodies = [b for b in GENERIC if b not in (b"", b"{}") and (not b.startswith(b'{"') or b.startswith(b'{"a":{'))] + [
        b'{"data":[1]}', b'{"data":"x"}', b'{"data":{"id":{}}}', b'{"data":{"id":[1]}}', b'{"data":{"id":true}}',
        b'{"type":5,"data":{"id":"1"}}', b'{"action":[],"data":{}}', json.dumps({"data": {"id": payment_id}, "x": json.loads("[" * 100 + "]" * 100)}).encode(),
    ]
    wrong = []
    with broker.client() as http:
        for raw in bodies:
            unsigned = http.post(f"{MP_PATH}?data.id={payment_id}&type=payment", content=raw, headers={"content-type": "application/json"})
            forged = _mp_post(http, raw, data_id=payment_id, secret="not-it")
            signed = _mp_post(http, raw, data_id=payment_id)
            got = [(r.status_code, r.json().get("error", {}).get("code")) for r in (unsigned, forged, signed)]
            if got != [(400, "invalid_signature"), (400, "invalid_signature"), (400, "malformed_event")]:
                wrong.append(f"{raw[:40]!r}: {got}")
        for hostile in ("..%2Fv1%2Fusers", "1%3B2", "a" * 100, "%00"):
            response = http.post(f"{MP_PATH}?data.id={hostile}&type=payment", content=_mp_body(1), headers={
                "x-request-id": "r", "x-signature": mp_sign(data_id=hostile, request_id="r", secret=MP_WEBHOOK_SECRET)})
            if response.status_code != 400:
                wrong.append(f"data.id={hostile}: {response.status_code}")
    assert not wrong, "\n".join(wrong)
    assert not any(r.path.startswith("/v1/payments") for r in fake_mp.requests)
    _nothing_happened(broker)


def test_mercadopago_stale_or_future_ts_is_refused(broker, owner, fake_mp):
    payment_id = _mp_payment(broker, owner, fake_mp)
    now = int(time.time())
    with broker.client() as http:
        week_old = _mp_post(http, _mp_body(payment_id), data_id=payment_id, ts=now - 7 * 86400)
        future = _mp_post(http, _mp_body(payment_id), data_id=payment_id, ts=now + 3600)
        huge = _mp_post(http, _mp_body(payment_id), data_id=payment_id, ts=10**40)
        assert [(r.status_code, r.json()["error"]["code"]) for r in (week_old, future)] == [(400, "signature_expired")] * 2
        assert huge.status_code == 400
        _nothing_happened(broker)
        millis = _mp_post(http, _mp_body(payment_id), data_id=payment_id, ts=now * 1000 - 5000, request_id="req-ms")
        fresh = _mp_post(http, _mp_body(payment_id), data_id=payment_id, ts=now - 60, request_id="req-2")
    assert (millis.status_code, fresh.status_code) == (200, 200), (millis.text, fresh.text)
    assert fresh.json()["duplicate"] is True  # the millisecond one applied it
    assert len(broker.rows(PaymentEvent)) == 1


def test_mercadopago_acts_only_on_the_signed_id(broker, owner, fake_mp):
    payment_id = _mp_payment(broker, owner, fake_mp)
    other_id = _mp_payment(broker, owner, fake_mp)
    with broker.client() as http:
        no_query_id = _mp_post(http, _mp_body(payment_id), data_id=None)  # the signature covers no id at all
        other_in_body = _mp_post(http, _mp_body(other_id), data_id=payment_id)  # signed for one, body names another
        numeric = _mp_post(http, _mp_body(int(payment_id)), data_id=payment_id, request_id="req-3")
    assert [(r.status_code, r.json()["error"]["code"]) for r in (no_query_id, other_in_body)] == [(400, "unsigned_id")] * 2
    assert numeric.status_code == 200, numeric.text
    asked = [r.path for r in fake_mp.requests if r.path.startswith("/v1/payments")]
    assert asked == [f"/v1/payments/{payment_id}"]
    [applied] = broker.rows(PaymentEvent)
    assert applied.external_id == f"{payment_id}:approved"


@pytest.mark.parametrize("path", ["/api/payments/webhook", MP_PATH + "?data.id=1&type=payment"])
def test_payment_webhook_bodies_past_the_limit_are_413_while_reading(broker, path):
    limit = broker.settings.server.max_body_bytes
    raw = b'{"pad":"' + b"x" * (limit + 1024) + b'"}'
    headers = {"stripe-signature": sign(raw, WEBHOOK_SECRET), "x-request-id": "r",
               "x-signature": mp_sign(data_id="1", request_id="r", secret=MP_WEBHOOK_SECRET)}
    with broker.client() as http:
        declared = http.post(path, content=raw, headers=headers)
    assert (declared.status_code, declared.json()["error"]["code"]) == (413, "body_too_large")
    answer = post_without_end(broker.port, path, {"stripe-signature": "t=1,v1=00", "x-signature": "ts=1,v1=00"}, send=limit + 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413") and b"body_too_large" in answer, answer[:300]
    assert broker.rows(PaymentEvent) == []

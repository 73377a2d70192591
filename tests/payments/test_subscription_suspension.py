"""An unpaid or cancelled subscription suspends the organization once its period and the grace
(AIBROKER_SUBSCRIPTION_GRACE_DAYS) are over; a payment reactivates it. End to end: checkout
against the fake Stripe, webhooks signed as Stripe signs them, the job queue's cron route."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import update

from aibroker.models import Event, Job, Organization, Subscription
from tests.fakes.stripe_api import event, sign
from tests.support.accounts import WEBHOOK_SECRET, bearer, signup

URLS = {"successUrl": "https://app.example/ok", "cancelUrl": "https://app.example/cancel"}
DAY = 86400


@pytest.fixture
def owner(broker):
    return signup(broker, "subscriber@example.com", organization_name="Subscriber Inc")


def _stripe(broker, payload: bytes) -> dict:
    with broker.client() as http:
        response = http.post("/api/payments/webhook", content=payload, headers={"stripe-signature": sign(payload, WEBHOOK_SECRET)})
    assert response.status_code == 200, response.text
    return response.json()


def _subscribe(broker, owner, fake_stripe) -> dict:
    with broker.client() as http:
        created = http.post("/api/payments/checkout", json={**URLS, "plan": "STARTER"}, headers=bearer(owner["access_token"]))
    assert created.status_code == 201, created.text
    completed = fake_stripe.completed(created.json()["id"])
    _stripe(broker, event("checkout.session.completed", completed, event_id="evt_sub_start", created=int(time.time()) - 1000))
    return completed


def _subscription(completed: dict, org_id: str, status: str, period_end: int) -> dict:
    return {"id": completed["subscription"], "object": "subscription", "status": status, "customer": completed["customer"],
            "metadata": {"kind": "subscription", "plan": "starter", "organization_id": org_id},
            "items": {"data": [{"current_period_end": period_end}]}}


def _invoice_paid(completed: dict, org_id: str, invoice_id: str) -> dict:
    now = int(time.time())
    return {"id": invoice_id, "object": "invoice", "customer": completed["customer"], "status": "paid", "amount_paid": 2900, "currency": "usd",
            "parent": {"subscription_details": {"subscription": completed["subscription"], "metadata": {"plan": "starter", "organization_id": org_id}}},
            "lines": {"data": [{"period": {"start": now, "end": now + 30 * DAY}}]}}


def _status(broker, org_id: str) -> str:
    [org] = broker.rows(Organization, Organization.id == org_id)
    return org.status


def _can_call(broker, owner) -> int:
    with broker.client() as http:
        return http.get("/api/ai/usage", headers=bearer(owner["access_token"])).status_code


def test_unpaid_past_the_grace_suspends_and_a_paid_invoice_reactivates(broker, owner, fake_stripe):
    org_id = owner["organization"]["id"]
    completed = _subscribe(broker, owner, fake_stripe)
    now = int(time.time())
    # past_due one day after the period ended: within the default 3-day grace, still active.
    body = _stripe(broker, event("customer.subscription.updated", _subscription(completed, org_id, "past_due", now - DAY),
                                 event_id="evt_past_due", created=now - 900))
    assert _status(broker, org_id) == "active" and _can_call(broker, owner) == 200, body
    # unpaid (Stripe gave up retrying), the period four days over: suspended.
    body = _stripe(broker, event("customer.subscription.updated", _subscription(completed, org_id, "unpaid", now - 4 * DAY),
                                 event_id="evt_unpaid", created=now - 800))
    assert any("organization suspended" in a for a in body["actions"]), body
    assert _status(broker, org_id) == "suspended"
    with broker.client() as http:
        refused = http.get("/api/ai/usage", headers=bearer(owner["access_token"]))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "organization_inactive"
    [suspended] = broker.rows(Event, Event.organization_id == org_id, Event.type == "organization.suspended")
    assert suspended.payload["reason"] == "subscription_unpaid"
    # The customer pays the invoice (Stripe's hosted page, retries): active again.
    _stripe(broker, event("invoice.paid", _invoice_paid(completed, org_id, "in_recovered"), event_id="evt_recovered", created=now))
    assert _status(broker, org_id) == "active" and _can_call(broker, owner) == 200


def test_a_lapse_within_the_grace_is_enforced_later_by_the_job_queue(broker, owner, fake_stripe):
    org_id = owner["organization"]["id"]
    completed = _subscribe(broker, owner, fake_stripe)
    now = int(time.time())
    _stripe(broker, event("customer.subscription.updated", _subscription(completed, org_id, "past_due", now - DAY),
                          event_id="evt_late", created=now - 900))
    [job] = broker.rows(Job, Job.type == "payments.enforce_subscription", Job.organization_id == org_id)
    due = job.scheduled_for if job.scheduled_for.tzinfo else job.scheduled_for.replace(tzinfo=dt.UTC)
    expected = dt.datetime.fromtimestamp(now + 2 * DAY, dt.UTC)  # period end + 3 days
    assert abs((due - expected).total_seconds()) < 60
    with broker.admin() as admin:
        admin.post("/api/jobs/process", json={"max_jobs": 10})  # not due yet: nothing happens
    assert _status(broker, org_id) == "active"
    # Time passes: the period is now long over and the job is due.
    with broker.db.begin() as conn:
        conn.execute(update(Subscription).where(Subscription.organization_id == org_id)
                     .values(current_period_end=dt.datetime.fromtimestamp(now - 10 * DAY, dt.UTC)))
        conn.execute(update(Job).where(Job.id == job.id).values(scheduled_for=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    with broker.admin() as admin:
        ran = admin.post("/api/jobs/process", json={"max_jobs": 10})
    assert ran.status_code == 200 and ran.json()["processed"] >= 1, ran.text
    assert _status(broker, org_id) == "suspended"


def test_a_cancelled_subscription_keeps_its_period_then_suspends(broker, owner, fake_stripe):
    org_id = owner["organization"]["id"]
    completed = _subscribe(broker, owner, fake_stripe)
    now = int(time.time())
    _stripe(broker, event("customer.subscription.deleted", _subscription(completed, org_id, "canceled", now + 10 * DAY),
                          event_id="evt_cancel", created=now - 900))
    [org] = broker.rows(Organization, Organization.id == org_id)
    assert (org.plan, org.status) == ("free", "active")
    ended = _subscription(completed, org_id, "canceled", now - 5 * DAY)
    body = _stripe(broker, event("customer.subscription.deleted", ended, event_id="evt_cancel_over", created=now - 800))
    assert _status(broker, org_id) == "suspended", body
    [suspended] = broker.rows(Event, Event.organization_id == org_id, Event.type == "organization.suspended")
    assert suspended.payload["reason"] == "subscription_ended"
    # Suspended, its billing users can still see why and pay, and paying brings it back; nothing else works.
    with broker.client() as http:
        headers = bearer(owner["access_token"])
        view = http.get(f"/api/payments/subscription/{org_id}", headers=headers)
        assert view.status_code == 200 and view.json()["status"] == "SUSPENDED", view.text
        refused = http.get("/api/ai/usage", headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "organization_inactive"
        assert http.get("/api/payments", headers=headers).status_code == 403
        created = http.post("/api/payments/checkout", json={**URLS, "plan": "STARTER"}, headers=headers)
        assert created.status_code == 201, created.text
    again = fake_stripe.completed(created.json()["id"])
    _stripe(broker, event("checkout.session.completed", again, event_id="evt_resubscribe", created=now))
    assert _status(broker, org_id) == "active" and _can_call(broker, owner) == 200


def test_a_platform_suspension_is_not_lifted_or_relabelled_by_a_lapse(broker, owner, fake_stripe):
    org_id = owner["organization"]["id"]
    completed = _subscribe(broker, owner, fake_stripe)
    with broker.admin() as admin:
        assert admin.patch(f"/api/admin/organizations/{org_id}", json={"status": "cancelled"}).status_code == 200
    now = int(time.time())
    _stripe(broker, event("customer.subscription.updated", _subscription(completed, org_id, "unpaid", now - 9 * DAY),
                          event_id="evt_unpaid_cancelled", created=now - 800))
    assert _status(broker, org_id) == "cancelled"
    with broker.client() as http:
        closed = http.post("/api/payments/checkout", json={**URLS, "plan": "STARTER"}, headers=bearer(owner["access_token"]))
    assert closed.status_code == 403 and closed.json()["error"]["code"] == "organization_inactive"


class TestConfigurableGrace:
    @pytest.fixture
    def broker_env(self, broker_env):
        return {**broker_env, "AIBROKER_SUBSCRIPTION_GRACE_DAYS": "0"}

    def test_no_grace_suspends_as_soon_as_the_period_is_over(self, broker, owner, fake_stripe):
        org_id = owner["organization"]["id"]
        completed = _subscribe(broker, owner, fake_stripe)
        now = int(time.time())
        _stripe(broker, event("customer.subscription.updated", _subscription(completed, org_id, "past_due", now - 60),
                              event_id="evt_no_grace", created=now - 900))
        assert _status(broker, org_id) == "suspended"

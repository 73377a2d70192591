"""Alerts: spend thresholds (per local day and month), provider error rates and open circuit
breakers (platform), keys about to expire; recorded once per threshold and period, delivered
by the signed webhook and by e-mail to a real SMTP server process, which may be down."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import pytest

from aibroker.billing.audit import verify
from aibroker.models import AlertEmail, Job
from tests.ai.rollup_data import failed_attempt, record, write
from tests.billing.webhook_receiver import WebhookReceiver
from tests.fakes.smtp_server import SmtpProcess
from tests.support.broker import ADMIN_TOKEN
from tests.support.fleet import free_port

SECRET = "whsec-alerts"
CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "hello there broker"}]}  # 24 micros


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET).start()
    yield hook
    hook.stop()


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def smtp(smtp_port, tmp_path) -> Iterator[SmtpProcess]:
    """Not started: a test starts it when the server should be up."""
    server = SmtpProcess(smtp_port, tmp_path / "mail")
    yield server
    server.stop()


@pytest.fixture
def broker_env(broker_env, receiver, smtp_port):
    return {
        **broker_env,
        "AIBROKER_ALERT_WEBHOOK_URL": receiver.url, "AIBROKER_ALERT_WEBHOOK_SECRET": SECRET,
        "AIBROKER_ALERT_POLL_SECONDS": "0.05",
        "AIBROKER_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "AIBROKER_ALERT_EMAIL_FROM": "alerts@broker.test",
        "AIBROKER_ALERT_SCAN_SECONDS": "0",  # the tests scan on demand
        "AIBROKER_JOB_BACKOFF_BASE_SECONDS": "0.01", "AIBROKER_JOB_BACKOFF_MAX_SECONDS": "0.05",
        "AI_COST_ALERT_THRESHOLD": "0.00003",  # 30 micros a month: two mock calls cross it
        "AIBROKER_ALERT_PLATFORM_EMAILS": "noc@platform.test",
        "AIBROKER_ALERT_ERROR_MIN_REQUESTS": "5",
    }


def _scan(admin):
    response = admin.post("/api/ai/alerts/scan")
    assert response.status_code == 200, response.text
    return response.json()


def _process(admin, max_jobs=50):
    response = admin.post("/api/jobs/process", json={"max_jobs": max_jobs})
    assert response.status_code == 200, response.text
    return response.json()


def _mail_jobs(broker):
    return broker.rows(Job, Job.type == "alerts.send_email")


def test_spend_alerts_mail_once_even_when_smtp_was_down(broker, receiver, smtp):
    org = broker.create_org("Spender", credit="1")
    acting = {"x-organization-id": org["organization_id"]}
    with broker.client(org["api_key"]) as tenant, broker.admin() as admin:
        assert tenant.put("/api/ai/alerts/settings", json={"daily_spend_micros": 40}).status_code == 403  # a key cannot
        put = admin.put("/api/ai/alerts/settings", headers=acting, json={"daily_spend_micros": 40, "emails": ["Ops@Acme.test"]})
        assert put.status_code == 200, put.text
        assert put.json()["emails"] == ["ops@acme.test"] and put.json()["monthly_spend_micros"] == 30
        assert tenant.post("/v1/chat/completions", json=CHAT).status_code == 200
        first = _scan(admin)
        assert first["alerts"] == []  # 24 micros: below both thresholds
        assert first["emails_queued"] == 1  # the wallet's low-balance event (below 1.00 after the call) is mailed too
        assert tenant.post("/v1/chat/completions", json=CHAT).status_code == 200
        found = _scan(admin)
        assert sorted(a["type"] for a in found["alerts"]) == ["alert.spend_daily", "alert.spend_monthly"]
        assert found["emails_queued"] == 2

        outcome = _process(admin, max_jobs=3)  # nobody listens on the SMTP port yet
        assert outcome["retried"] == 3 and outcome["completed"] == 0
        jobs = _mail_jobs(broker)
        assert {j.status for j in jobs} == {"pending"} and any("SMTP unreachable" in (j.error or "") for j in jobs)
        assert {r.status for r in broker.rows(AlertEmail)} == {"pending"}

        smtp.start()
        deadline = dt.datetime.now() + dt.timedelta(seconds=15)
        while len(smtp.messages()) < 3 and dt.datetime.now() < deadline:
            _process(admin)
        messages = smtp.wait_for(3)
        subjects = {m["X-Aibroker-Event-Type"]: m["Subject"] for m in messages}
        assert set(subjects) == {"alert.spend_daily", "alert.spend_monthly", "wallet.low_balance"}
        assert subjects["alert.spend_daily"].startswith("[aibroker] Daily AI spend reached")
        assert "Monthly AI spend" in subjects["alert.spend_monthly"]
        assert {m["X-Envelope-To"] for m in messages} == {"ops@acme.test"}
        assert {m["From"] for m in messages} == {"alerts@broker.test"}

        # again: nothing new is recorded, queued or sent
        assert _scan(admin) == {"alerts": [], "emails_queued": 0}
        _process(admin)
        assert len(smtp.messages()) == 3
        assert {r.status for r in broker.rows(AlertEmail)} == {"sent"}

        listed = tenant.get("/api/ai/alerts").json()["data"]
        assert {(a["type"], a["email"]) for a in listed} == {("alert.spend_daily", "sent"), ("alert.spend_monthly", "sent"),
                                                                  ("wallet.low_balance", "sent")}
        daily = next(a for a in listed if a["type"] == "alert.spend_daily")
        assert daily["data"]["spent_micros"] == 48 and daily["data"]["threshold_micros"] == 40
    hooks = [d for d in receiver.wait_for(3) if d.body["type"].startswith("alert.spend")]
    assert len(hooks) == 2 and all(d.signature_ok for d in hooks)
    assert {d.body["organization_id"] for d in hooks} == {org["organization_id"]}
    assert verify(broker.db).ok


def test_other_organizations_alerts_and_settings_stay_apart(broker):
    a, b = broker.create_org("A", credit="5"), broker.create_org("B", credit="5")  # far above low balance
    with broker.client(a["api_key"]) as ta, broker.client(b["api_key"]) as tb, broker.admin() as admin:
        admin.put("/api/ai/alerts/settings", headers={"x-organization-id": a["organization_id"]}, json={"enabled": False})
        for _ in range(2):
            assert ta.post("/v1/chat/completions", json=CHAT).status_code == 200
            assert tb.post("/v1/chat/completions", json=CHAT).status_code == 200
        alerts = _scan(admin)["alerts"]
        assert {x["organization_id"] for x in alerts} == {b["organization_id"]}  # A turned its alerts off
        assert ta.get("/api/ai/alerts").json()["data"] == []
        assert [x["type"] for x in tb.get("/api/ai/alerts").json()["data"]] == ["alert.spend_monthly"]
        assert ta.get("/api/ai/alerts/settings").json()["enabled"] is False
        assert tb.get("/api/ai/alerts/settings").json()["enabled"] is True


def test_expiring_keys_error_rates_and_open_breakers(broker, smtp):
    org = broker.create_org("Keys", credit="1")
    acting = {"x-organization-id": org["organization_id"]}
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    rows = [record(org["organization_id"], now, rng, provider="anthropic", model="anthropic/claude-3-5-haiku",
                   status="success", attempt=1, provider_cost_micros=0) for _ in range(4)]  # free: no spend alert
    rows += [failed_attempt(org["organization_id"], now, rng) | {"provider": "anthropic"} for _ in range(6)]
    write(broker.db, rows)
    for _ in range(10):
        broker.services.pool.breakers["openai"].record_failure()
    smtp.start()
    with broker.admin() as admin:
        admin.put("/api/ai/alerts/settings", headers=acting, json={"emails": ["keys@acme.test"], "key_expiry_days": 5})
        assert admin.post("/api/keys", headers=acting, json={"name": "soon", "expires_at": soon}).status_code == 201
        assert admin.post("/api/keys", headers=acting, json={"name": "later", "expires_at": later}).status_code == 201
        own = {"provider": "openai", "api_key": "sk-own-key-expiring", "expires_at": soon}
        assert admin.post("/api/provider-keys", headers=acting, json=own).status_code == 201
        found = _scan(admin)
        kinds = sorted(a["type"] for a in found["alerts"])
        assert kinds == ["alert.api_key_expiring", "alert.circuit_open", "alert.provider_error_rate", "alert.provider_key_expiring"], kinds
        assert _scan(admin)["alerts"] == []  # once per key expiry, per provider per hour
        deadline = dt.datetime.now() + dt.timedelta(seconds=15)
        while len(smtp.messages()) < 4 and dt.datetime.now() < deadline:
            _process(admin)
    messages = {m["X-Aibroker-Event-Type"]: m for m in smtp.wait_for(4)}
    assert "openai" in messages["alert.provider_key_expiring"]["Subject"]
    assert "soon" in messages["alert.api_key_expiring"]["Subject"]
    assert messages["alert.api_key_expiring"]["X-Envelope-To"] == "keys@acme.test"
    assert messages["alert.provider_error_rate"]["X-Envelope-To"] == "noc@platform.test"
    assert "anthropic" in messages["alert.provider_error_rate"]["Subject"]
    assert "openai" in messages["alert.circuit_open"]["Subject"]
    assert {r.status for r in broker.rows(AlertEmail)} == {"sent"}


def test_settings_reject_garbage(broker):
    org = broker.create_org("Garbage", credit="1")
    acting = {"x-organization-id": org["organization_id"], "authorization": f"Bearer {ADMIN_TOKEN}"}
    with broker.client() as http:
        for body in ({"emails": ["not-an-address"]}, {"daily_spend_micros": -5}, {"key_expiry_days": 10**6},
                     {"emails": ["a@b.co"] * 50}, {"monthly_spend_micros": "lots"}):
            response = http.put("/api/ai/alerts/settings", headers=acting, json=body)
            assert 400 <= response.status_code < 500, (body, response.text)
        cleared = http.put("/api/ai/alerts/settings", headers=acting, json={"monthly_spend_micros": None})
        assert cleared.status_code == 200 and cleared.json()["monthly_spend_micros"] == 30  # back to the default
        assert http.post("/api/ai/alerts/scan", headers={"authorization": f"Bearer {org['api_key']}"}).status_code in (401, 403)

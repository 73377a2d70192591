"""Bad input on the platform API is a 4xx with a message, never a 500 (issue 18, item 13):
integers beyond their columns, explicit nulls into NOT NULL settings, amounts beyond BIGINT.
And timestamps in responses always carry their UTC offset, on SQLite too."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support.broker import ADMIN_TOKEN

HUGE = 10**20  # beyond a 64-bit integer


@pytest.fixture
def org(broker):
    return broker.create_org("Bounded", plan="unlimited")


def _message(response) -> str:
    return response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/api/leads", "/api/conversations"])
def test_pagination_beyond_any_integer_column_is_422(broker, org, path):
    with broker.client(org["api_key"]) as client:
        huge = client.get(path, params={"offset": HUGE})
        fine = client.get(path, params={"offset": 2**31 - 1})
    assert huge.status_code == 422, huge.text
    assert "offset" in _message(huge)
    assert fine.status_code == 200 and fine.json()["data"] == []


@pytest.mark.parametrize("field", [
    "system_prompt", "response_style", "temperature", "max_tokens", "escalation_keywords",
    "auto_escalate_after_messages", "scoring_enabled",
])
def test_an_explicit_null_into_a_not_null_ai_setting_is_422(broker, org, field):
    with broker.client(org["api_key"]) as client:
        refused = client.put("/api/ai/context", json={field: None})
        kept = client.get("/api/ai/context")
    assert refused.status_code == 422, refused.text
    assert field in _message(refused)
    assert kept.json()[field] is not None


def test_nullable_ai_settings_still_take_null(broker, org):
    with broker.client(org["api_key"]) as client:
        response = client.put("/api/ai/context", json={"away_message": None, "model": None, "business_hours": None,
                                                       "system_prompt": "Be brief."})
    assert response.status_code == 200, response.text
    assert response.json()["away_message"] is None and response.json()["system_prompt"] == "Be brief."


@pytest.mark.parametrize("amount", [{"amount_usd": "1e13"}, {"amount_usd": "1e999999"}, {"amount_micros": HUGE},
                                    {"amount_usd": "-1e13"}])
def test_an_amount_beyond_bigint_is_refused_and_moves_nothing(broker, org, amount):
    with broker.client(ADMIN_TOKEN) as admin:
        response = admin.post(f"/api/admin/wallets/{org['organization_id']}/topup", json=amount)
        wallet = admin.get(f"/api/admin/wallets/{org['organization_id']}")
    assert response.status_code == 422, response.text
    assert "amount" in _message(response)
    assert wallet.json()["balance_micros"] == org["balance_micros"]


def test_the_largest_amount_still_tops_up(broker, org):
    with broker.client(ADMIN_TOKEN) as admin:
        response = admin.post(f"/api/admin/wallets/{org['organization_id']}/topup", json={"amount_usd": "1000000000"})
    assert response.status_code == 200, response.text
    assert response.json()["wallet"]["balance_micros"] == org["balance_micros"] + 10**15


def test_timestamps_in_responses_carry_their_utc_offset(broker, org):
    """On SQLite the database hands back naive datetimes; every response still says UTC."""
    with broker.client(ADMIN_TOKEN) as admin:
        topup = admin.post(f"/api/admin/wallets/{org['organization_id']}/topup", json={"amount_usd": "1"}).json()
    with broker.client(org["api_key"]) as client:
        keys = client.get("/api/keys").json()
        ledger = client.get("/api/wallet/transactions").json()
    stamps = [topup["transaction"]["created_at"]]
    stamps += [k["created_at"] for k in (keys["data"] if isinstance(keys, dict) else keys)]
    stamps += [entry["created_at"] for entry in ledger["data"]]
    assert len(stamps) >= 3
    for stamp in stamps:
        parsed = dt.datetime.fromisoformat(stamp)
        assert parsed.utcoffset() == dt.timedelta(0), stamp


@pytest.mark.parametrize(("path", "body"), [
    ("/api/admin/plans", {"slug": "huge", "name": "Huge", "requests_per_minute": HUGE}),
    ("/api/admin/plans", {"slug": "huge", "name": "Huge", "monthly_token_quota": HUGE}),
    ("/api/admin/routing/matrix", {"plan": "free", "feature": "chat", "provider": "mock", "daily_limit": HUGE}),
    ("/api/admin/routing/matrix", {"plan": "free", "feature": "chat", "provider": "mock", "priority": HUGE}),
    ("/api/admin/routing/providers", {"slug": "x" * 61}),
])
def test_admin_limits_beyond_their_columns_are_422(broker, path, body):
    with broker.client(ADMIN_TOKEN) as admin:
        response = admin.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"]


@pytest.mark.parametrize("url", ["/api/admin/jobs?type=%00job", "/api/admin/jobs/%00/retry", "/api/leads/a%00b", "/v1/models/x%00"])
def test_a_nul_in_the_url_is_400_before_any_query(broker, org, url):
    """PostgreSQL cannot compare text with a NUL: it used to be a 500 wherever one reached a query."""
    method = "POST" if url.endswith("/retry") else "GET"
    key = ADMIN_TOKEN if "/admin/" in url else org["api_key"]
    with broker.client(key) as client:
        response = client.request(method, url)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "nul_character"
    assert response.headers["x-request-id"]


async def test_a_value_the_database_refuses_is_classified_as_the_clients_400(database_url):
    """The safety net under the bounds (errors.unstorable_value): the real errors of each database."""
    from sqlalchemy import text

    from aibroker.db import Database
    from aibroker.errors import unstorable_value

    db = Database(database_url)
    bad = ("SELECT CAST(:v AS TEXT)", {"v": "a\x00b"}) if db.url.startswith("postgresql") else ("SELECT :v", {"v": HUGE})
    try:
        async with db.sessions() as session:
            with pytest.raises(Exception) as raised:
                await session.execute(text(bad[0]), bad[1])
            async with db.sessions() as other:
                with pytest.raises(Exception) as unrelated:
                    await other.execute(text("SELECT * FROM no_such_table"))
    finally:
        await db.dispose()
    refused = unstorable_value(raised.value)
    assert refused is not None and refused.status_code == 400 and refused.code == "invalid_value"
    assert unstorable_value(unrelated.value) is None  # a bug of ours stays a 500

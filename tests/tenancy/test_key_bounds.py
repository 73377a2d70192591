"""Key limits and other tenancy bodies are bounded to fit their columns (issue 18, item 13):
an out-of-range number is a 4xx naming the field, never a 500; the largest values that fit
are stored as sent."""

from __future__ import annotations

import pytest

from aibroker.models import ApiKey

INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1


@pytest.mark.parametrize("field, value", [
    ("rpm", 2**31), ("rph", 10**12), ("tpm", 2**63), ("daily_token_quota", 2**63), ("monthly_token_quota", 10**30),
    ("daily_request_quota", 2**31), ("monthly_request_quota", -5), ("rpm", 0), ("default_feature", "f" * 81),
    ("profile", "p" * 41), ("allowed_groups", ["g" * 81]), ("allowed_profiles", ["admin"] * 51),
])
def test_out_of_range_key_fields_are_4xx(broker, field, value):
    org = broker.create_org("Bounds")
    with broker.client(org["api_key"]) as http:
        created = http.post("/api/keys", json={"name": "k", field: value})
        key_id = http.get("/api/keys").json()[0]["id"]
        patched = http.patch(f"/api/keys/{key_id}", json={field: value})
    for response in (created, patched) if field != "default_feature" else (created,):  # PATCH does not change it
        assert 400 <= response.status_code < 500, response.text
        assert field in response.text


def test_the_largest_values_that_fit_are_stored(broker):
    org = broker.create_org("Bounds")
    top = {"rpm": INT32_MAX, "rph": INT32_MAX, "tpm": INT32_MAX, "daily_request_quota": INT32_MAX,
           "monthly_request_quota": INT32_MAX, "daily_token_quota": INT64_MAX, "monthly_token_quota": INT64_MAX}
    with broker.client(org["api_key"]) as http:
        created = http.post("/api/keys", json={"name": "top", **top})
        patched = http.patch(f"/api/keys/{created.json()['id']}", json={"rpm": INT32_MAX - 1})
    assert created.status_code == 201, created.text
    assert patched.status_code == 200 and patched.json()["limits"] == {**top, "rpm": INT32_MAX - 1}
    [row] = broker.rows(ApiKey, ApiKey.id == created.json()["id"])
    assert row.daily_token_quota == INT64_MAX


@pytest.mark.parametrize("credit", ["1e13", "0.0000001", "NaN", "-1"])
def test_admin_organization_credit_is_bounded(broker, credit):
    with broker.admin() as admin:
        response = admin.post("/api/admin/organizations", json={"name": "Rich", "credit": credit})
    assert 400 <= response.status_code < 500, response.text

"""Helpers for tests that sign people up, log them in and pay (accounts issue)."""

from __future__ import annotations

from typing import Any

from tests.support.broker import BrokerServer

PASSWORD = "correct-horse-42"
WEBHOOK_SECRET = "whsec_test_secret"
MP_WEBHOOK_SECRET = "mp-webhook-secret"


def signup(broker: BrokerServer, email: str, *, organization_name: str | None = "Acme", password: str = PASSWORD, name: str = "Ana") -> dict[str, Any]:
    body: dict[str, Any] = {"email": email, "password": password, "name": name}
    if organization_name:
        body["organization_name"] = organization_name
    with broker.client() as http:
        response = http.post("/api/auth/signup", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **extra}

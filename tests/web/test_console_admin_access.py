"""Who may open the platform pages: an organization's OWNER gets 403 on every page and form
(and nothing changes), a signed-out visitor is sent to the sign-in page, a form without the
session's CSRF token is refused (403), unknown ids are 404 and bad input a clear 4xx."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import insert, select

from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Job, Wallet
from tests.web.support import make_account, make_org, signed_in_client

ROUTING = "/api/admin/routing"


@pytest.fixture(scope="module")
def world(console):
    """An organization, a routing row and a dead job for the URLs to name."""
    org = make_org(console, "Target", credit="5")
    with console.admin() as api:
        api.put(f"{ROUTING}/vocabulary", json={"plans": ["free"], "profiles": []}).raise_for_status()
        api.post(f"{ROUTING}/providers", json={"slug": "mock", "default_model": "mock-chat"}).raise_for_status()
        api.post(f"{ROUTING}/features", json={"slug": "resumo"}).raise_for_status()
        row = api.post(f"{ROUTING}/matrix", json={"plan": "free", "feature": "resumo", "provider": "mock"}).json()
    job_id, now = new_id("job"), utcnow()
    with console.db.begin() as conn:
        conn.execute(insert(Job.__table__).values(id=job_id, type="demo.fail", payload={}, status="failed", attempts=5,
                                                  max_attempts=5, scheduled_for=now, created_at=now, updated_at=now))
    return {"org": org["organization_id"], "row": row["id"], "job": job_id}


def pages(w: dict) -> list[str]:
    return [
        "/console/admin", "/console/admin/organizations", f"/console/admin/organizations/{w['org']}",
        "/console/admin/routing", "/console/admin/routing/resolve?plan=free&feature=resumo",
        f"/console/admin/routing/matrix/{w['row']}", "/console/admin/catalog", "/console/admin/catalog/models/mock/mock-chat",
        "/console/admin/providers", "/console/admin/jobs", "/console/admin/revenue",
    ]


def forms(w: dict) -> list[tuple[str, dict[str, str]]]:
    return [
        (f"/console/admin/organizations/{w['org']}/settings", {"plan": "free", "status": "suspended"}),
        (f"/console/admin/organizations/{w['org']}/margin", {"margin_bps": "9000"}),
        (f"/console/admin/organizations/{w['org']}/adjustment", {"amount": "1000", "reason": "mine now"}),
        (f"/console/admin/routing/matrix/{w['row']}", {"model": "mock/mock-text", "origin": "default", "priority": "0"}),
        ("/console/admin/catalog/models/mock/mock-chat", {"input_per_1m": "0", "output_per_1m": "0", "enabled": "on"}),
        ("/console/admin/catalog/reset/mock/mock-chat", {}),
        (f"/console/admin/jobs/{w['job']}/retry", {}),
    ]


def _untouched(console, w: dict) -> None:
    balance = console.rows(Wallet.__table__, Wallet.organization_id == w["org"])[0].balance_micros
    assert balance == 5_000_000
    with console.db.connect() as conn:
        assert conn.execute(select(Job.status).where(Job.id == w["job"])).scalar_one() == "failed"
    with console.admin() as api:
        org = next(o for o in api.get("/api/admin/organizations").json()["data"] if o["id"] == w["org"])
        matrix = api.get(f"{ROUTING}/matrix").json()["matrix"]
    assert org["status"] == "active"
    assert next(m for m in matrix if m["id"] == w["row"])["model"] == "mock/mock-chat"
    assert console.services.catalog.get("mock/mock-chat").input_micros_per_m == 1_000_000


def test_an_owner_gets_403_on_every_page_and_form(console, world):
    owner = make_account(console, "OWNER")
    client, token = signed_in_client(console, owner)
    with contextlib.closing(client):
        for url in pages(world):
            assert client.get(url).status_code == 403, url
        for url, data in forms(world):
            assert client.post(url, data={**data, "csrf_token": token}).status_code == 403, url
    _untouched(console, world)


def test_signed_out_goes_to_the_sign_in_page(console, world):
    with console.client(follow_redirects=False) as anonymous:
        for url in pages(world):
            response = anonymous.get(url)
            assert response.status_code == 303 and response.headers["location"].startswith("/console/login?next="), url
        for url, data in forms(world):
            response = anonymous.post(url, data=data)
            assert response.status_code == 303 and response.headers["location"].startswith("/console/login"), url
    _untouched(console, world)


def test_a_form_without_the_csrf_token_is_refused(console, world):
    admin = make_account(console, "OWNER", super_admin=True)
    client, token = signed_in_client(console, admin)
    with contextlib.closing(client):
        for url, data in forms(world):
            assert client.post(url, data=data).status_code == 403, url
            assert client.post(url, data={**data, "csrf_token": "0" * len(token)}).status_code == 403, url
        for url in pages(world):  # while the platform admin opens every page
            assert client.get(url).status_code in (200, 303), url
    _untouched(console, world)


def test_unknown_ids_are_404_and_bad_input_a_clear_4xx(console, world):
    admin = make_account(console, "OWNER", super_admin=True)
    client, token = signed_in_client(console, admin)
    org = world["org"]
    with contextlib.closing(client):
        for url in ("/console/admin/organizations/org_nope", "/console/admin/routing/matrix/rpm_nope",
                    "/console/admin/catalog/models/mock/no-such-model"):
            assert client.get(url).status_code == 404, url
        assert client.post("/console/admin/jobs/job_nope/retry", data={"csrf_token": token}).status_code == 404
        bad = [
            (f"/console/admin/organizations/{org}/adjustment", {"amount": "abc", "reason": "x"}, 400),
            (f"/console/admin/organizations/{org}/adjustment", {"amount": "1.0000001", "reason": "x"}, 400),
            (f"/console/admin/organizations/{org}/adjustment", {"amount": "5", "reason": " "}, 400),
            (f"/console/admin/organizations/{org}/adjustment", {"amount": "1e30", "reason": "x"}, 400),
            (f"/console/admin/organizations/{org}/margin", {"margin_bps": "-5"}, 400),
            (f"/console/admin/organizations/{org}/margin", {"margin_bps": "lots"}, 400),
            (f"/console/admin/organizations/{org}/settings", {"plan": "no-such-plan", "status": "active"}, 400),
            (f"/console/admin/organizations/{org}/settings", {"plan": "free", "status": "frozen"}, 400),
            (f"/console/admin/routing/matrix/{world['row']}", {"daily_limit": "-1", "origin": "default", "priority": "0"}, 400),
            (f"/console/admin/routing/matrix/{world['row']}", {"priority": "first", "origin": "default"}, 400),
            ("/console/admin/catalog/models/mock/mock-chat", {"input_per_1m": "cheap", "output_per_1m": "1"}, 400),
        ]
        for url, data, status in bad:
            response = client.post(url, data={**data, "csrf_token": token})
            assert response.status_code == status, (url, data, response.status_code)
            assert 'data-testid="form-error"' in response.text, (url, data)
        for url in ("/console/admin/revenue?from=yesterday", "/console/admin/revenue?from=2026-02-01&to=2026-01-01",
                    "/console/admin/routing/resolve?plan=gold&feature=resumo", "/console/admin/routing/resolve?plan=free&feature=nope",
                    "/console/admin/routing/resolve?plan=free&feature=resumo&organization=org_nope"):
            assert client.get(url).status_code == 400, url
        assert client.get("/console/admin/providers?window=forever").status_code == 200  # the default window instead
    _untouched(console, world)


def test_the_same_adjustment_form_twice_moves_money_once(console, world):
    admin = make_account(console, "OWNER", super_admin=True)
    org = make_org(console, "Twice", credit="1")["organization_id"]
    client, token = signed_in_client(console, admin)
    url = f"/console/admin/organizations/{org}/adjustment"
    form = {"amount": "-3", "reason": "chargeback", "idempotency_key": "con_twice_" + org, "allow_negative": "on", "csrf_token": token}
    with contextlib.closing(client):
        first, again = client.post(url, data=form), client.post(url, data=form)
        assert first.status_code == again.status_code == 303
        assert "already applied" in client.get(again.headers["location"]).text
        reused = client.post(url, data={**form, "amount": "-4"})  # the same key for another amount
        assert reused.status_code == 409 and 'data-testid="form-error"' in reused.text
    assert console.rows(Wallet.__table__, Wallet.organization_id == org)[0].balance_micros == -2_000_000  # 1 - 3, once

"""Who may open and change what: roles (403), other organizations' ids (404), signed out
(to the sign-in form), CSRF (403) and bad input (4xx, never 500), over real HTTP."""

from __future__ import annotations

from contextlib import closing

import pytest

from tests.support.broker import BrokerServer
from tests.web.support import Account, make_account, make_org, signed_in_client

PAGES = ("/console/overview", "/console/usage", "/console/wallet", "/console/keys", "/console/billing")
# What each role may open (tenancy/roles.py): VIEW_USAGE, MANAGE_KEYS, MANAGE_BILLING.
ALLOWED = {
    "OWNER": set(PAGES),
    "ADMIN": set(PAGES),
    "AGENT": {"/console/overview", "/console/usage", "/console/wallet"},
    "DISTRIBUTOR": {"/console/overview", "/console/usage", "/console/wallet", "/console/billing"},
    "MEMBER": set(),
}
FORMS = {  # a state-changing form and the permission it needs (the role column: may it?)
    "/console/keys": {"name": "x"},
    "/console/wallet/topup": {"amount": "20", "provider": "stripe"},
    "/console/wallet/settings": {"threshold": "1"},
}
FORM_ALLOWED = {
    "OWNER": set(FORMS), "ADMIN": set(FORMS), "AGENT": set(),
    "DISTRIBUTOR": {"/console/wallet/topup", "/console/wallet/settings"}, "MEMBER": set(),
}


@pytest.fixture(scope="module")
def org(console: BrokerServer) -> dict:
    return make_org(console)


@pytest.mark.parametrize("role", list(ALLOWED))
def test_each_role_opens_only_its_pages_and_forms(console: BrokerServer, org: dict, role: str) -> None:
    account = make_account(console, role, org)
    client, token = signed_in_client(console, account)
    with closing(client):
        for path in PAGES:
            status = client.get(path).status_code
            assert status == (200 if path in ALLOWED[role] else 403), (role, path, status)
        for path, data in FORMS.items():
            status = client.post(path, data={**data, "csrf_token": token}).status_code
            allowed = path in FORM_ALLOWED[role]
            assert (status != 403) == allowed, (role, path, status)
            assert status < 500


def test_signed_out_every_page_and_form_goes_to_sign_in(console: BrokerServer) -> None:
    with console.client(follow_redirects=False) as http:
        for path in (*PAGES, "/console/usage.csv", "/console/wallet/transactions.csv", "/console/keys/key_x"):
            response = http.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith("/console/login?next="), path
        for path, data in FORMS.items():
            assert http.post(path, data=data).status_code == 303


def test_forms_refuse_a_missing_or_foreign_csrf_token(console: BrokerServer, owner: Account) -> None:
    other = make_account(console, "OWNER")
    client, _ = signed_in_client(console, owner)
    _, other_token = signed_in_client(console, other)
    with closing(client):
        for path, data in FORMS.items():
            assert client.post(path, data=data).status_code == 403
            assert client.post(path, data={**data, "csrf_token": other_token}).status_code == 403  # another session's token


def _key_id(console: BrokerServer, api_key: str) -> str:
    with console.client(api_key) as http:
        return http.get("/api/keys").json()[0]["id"]


def test_another_organizations_key_is_not_found(console: BrokerServer, owner: Account) -> None:
    stranger = make_account(console, "OWNER")
    foreign = _key_id(console, stranger.api_key)
    client, token = signed_in_client(console, owner)
    with closing(client):
        assert client.get(f"/console/keys/{foreign}").status_code == 404
        assert client.post(f"/console/keys/{foreign}", data={"csrf_token": token, "name": "mine now"}).status_code == 404
        assert client.post(f"/console/keys/{foreign}/revoke", data={"csrf_token": token}).status_code == 404
        records = client.get(f"/console/usage?key={foreign}")
        assert records.status_code == 200 and "No records match." in records.text
    with console.client(stranger.api_key) as http:  # untouched
        key = http.get("/api/keys").json()[0]
    assert key["revoked_at"] is None and key["name"] != "mine now"


def test_bad_input_is_a_clear_4xx(console: BrokerServer, owner: Account) -> None:
    client, token = signed_in_client(console, owner)
    with closing(client):
        for path in ("/console/usage?from=yesterday", "/console/usage?status=bogus", "/console/usage.csv?to=2026-13-01",
                     "/console/billing?month=soon", "/console/wallet?cursor=abc"):
            response = client.get(path)
            assert response.status_code == 400, path
            assert "text/html" in response.headers["content-type"]
        for limit in ("-5", "ten", "99999999999"):
            response = client.post("/console/keys", data={"csrf_token": token, "name": "k", "rpm": limit})
            assert response.status_code == 400 and "Requests per minute" in response.text
        assert client.post("/console/keys", data={"csrf_token": token, "name": ""}).status_code == 400
        assert client.post("/console/keys", data={"csrf_token": token, "name": "k", "expires_on": "2001-01-01"}).status_code == 400
        small = client.post("/console/wallet/topup", data={"csrf_token": token, "amount": "0.50"})
        assert small.status_code == 303
        assert "between 1.00 and 10000.00" in client.get("/console/wallet").text


def test_key_limits_and_name_are_saved_through_the_api_services(console: BrokerServer, owner: Account) -> None:
    key_id = _key_id(console, owner.api_key)
    client, token = signed_in_client(console, owner)
    with closing(client):
        saved = client.post(f"/console/keys/{key_id}", data={"csrf_token": token, "name": "renamed", "rpm": "60", "monthly_token_quota": "5000000",
                                                             "profile": "default", "profile_was": "default"})
        assert saved.status_code == 303
        assert 'value="60"' in client.get(f"/console/keys/{key_id}").text
    with console.client(owner.api_key) as http:
        key = http.get("/api/keys").json()[0]
    assert key["name"] == "renamed" and key["limits"]["rpm"] == 60 and key["limits"]["monthly_token_quota"] == 5_000_000


def test_usage_csv_exports_the_filtered_records(console: BrokerServer, owner: Account) -> None:
    with console.client(owner.api_key) as http:
        for model in ("mock-chat", "mock-chat", "mock-text"):
            http.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "=cmd"}]})
    console.flush()
    client, _ = signed_in_client(console, owner)
    with closing(client):
        everything = client.get("/console/usage.csv")
        only = client.get("/console/usage.csv?model=mock-chat")
        ledger = client.get("/console/wallet/transactions.csv?kind=debit")
    assert ledger.headers["content-type"].startswith("text/csv")
    assert len(ledger.text.strip().splitlines()) == 4 and all(",debit," in line for line in ledger.text.strip().splitlines()[1:])
    assert everything.headers["content-type"].startswith("text/csv")
    lines = everything.text.strip().splitlines()
    assert lines[0].startswith("id,request_id,created_at") and len(lines) == 4
    assert len(only.text.strip().splitlines()) == 3, lines


def test_usage_pages_go_back_in_time_without_repeating(console: BrokerServer, owner: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    from aibroker.web.pages import usage

    monkeypatch.setattr(usage, "PAGE_SIZE", 2)  # the server runs in this process
    with console.client(owner.api_key) as http:
        for _ in range(5):
            assert http.post("/v1/chat/completions", json={"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
    console.flush()
    client, _ = signed_in_client(console, owner)
    seen, path = [], "/console/usage"
    with closing(client):
        while path:
            html = client.get(path).text
            seen += re.findall(r"<code>(req_[^<]+)</code>", html)
            older = re.search(r'href="(/console/usage\?[^"]*cursor=[^"]+)">Older records', html)
            path = older.group(1).replace("&amp;", "&") if older else ""
    assert len(seen) == 5 and len(set(seen)) == 5

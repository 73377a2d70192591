"""Helpers for console tests: accounts with a role in an organization, signed-in HTTP clients."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy import insert

from aibroker.kit.ids import new_id
from aibroker.models import Membership
from tests.support.broker import BrokerServer

PASSWORD = "console-pass-1234"
_CSRF = re.compile(r'name="csrf-token" content="([^"]*)"')
_FORM_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class Account:
    email: str
    password: str
    user_id: str
    organization_id: str
    api_key: str  # the organization's key (made by the admin route)
    role: str


def make_org(server: BrokerServer, name: str = "Acme", credit: str = "10") -> dict:
    return server.create_org(f"{name} {uuid.uuid4().hex[:6]}", credit=credit)


def make_account(server: BrokerServer, role: str = "OWNER", org: dict | None = None, *, super_admin: bool = False) -> Account:
    """A new user holding `role` in `org` (a new organization when None)."""
    org = org or make_org(server)
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    with server.client() as http:
        response = http.post("/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Test person"})
    assert response.status_code == 201, response.text
    user_id = response.json()["user"]["id"]
    add_member(server, org["organization_id"], user_id, role)
    if super_admin:
        with server.db.begin() as conn:
            conn.exec_driver_sql("UPDATE users SET is_super_admin = true WHERE id = %s" if "postgresql" in server.database_url
                                 else "UPDATE users SET is_super_admin = 1 WHERE id = ?", (user_id,))
    return Account(email, PASSWORD, user_id, org["organization_id"], org["api_key"], role)


def add_member(server: BrokerServer, organization_id: str, user_id: str, role: str) -> None:
    with server.db.begin() as conn:
        conn.execute(insert(Membership.__table__).values(id=new_id("mem"), organization_id=organization_id, user_id=user_id, role=role,
                                                          created_at=__import__("aibroker.kit.clock", fromlist=["utcnow"]).utcnow()))


def csrf_of(html: str) -> str:
    found = _CSRF.search(html) or _FORM_CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def signed_in_client(server: BrokerServer, account: Account) -> tuple[httpx.Client, str]:
    """An HTTP client holding the console's session cookie, and the session's CSRF token."""
    client = server.client(follow_redirects=False)
    form = client.get("/console/login")
    assert form.status_code == 200
    response = client.post("/console/login", data={"email": account.email, "password": account.password, "csrf_token": csrf_of(form.text)})
    assert response.status_code == 303, response.text
    page = client.get("/console/overview") if account.role != "MEMBER" else client.get("/console/logout")
    return client, csrf_of(page.text)

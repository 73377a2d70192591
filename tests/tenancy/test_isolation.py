"""No endpoint leaks across tenants. Every route of the app is called with a second
organization's credentials, aimed at the first organization (its id in the path, in the
`x-organization-id` header, its rows' ids): each must answer 401/403/404, and list
routes must not show the first organization's data.

Routes that are deliberately not tenant-authenticated are listed in EXEMPT, with why;
a new route is tested automatically, so it fails here until it is isolated (or exempted)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from aibroker.models import Base
from tests.support.accounts import bearer, signup

EXEMPT: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "liveness, no tenant data",
    ("GET", "/readyz"): "readiness, no tenant data",
    ("GET", "/metrics"): "Prometheus metrics, aggregate only",
    ("POST", "/api/auth/signup"): "creates a new account",
    ("GET", "/console"): "the console's sign-in form, no tenant data",
    ("GET", "/console/login"): "the console's sign-in form, no tenant data",
    ("POST", "/api/auth/login"): "credentials are the body",
    ("POST", "/api/auth/refresh"): "the refresh token is the credential",
    ("POST", "/api/auth/logout"): "the refresh token is the credential",
    ("POST", "/api/invitations/accept"): "the invitation token is the credential",
    ("POST", "/api/organizations/validate-code"): "the organization code is the credential",
    ("POST", "/api/payments/validate-code"): "the organization code is the credential",
    ("POST", "/api/organizations/create-from-code"): "the organization code is the credential",
    ("POST", "/api/payments/webhook"): "signed by Stripe; tenant routed from the payload",
    ("POST", "/api/payments/mercadopago/webhook"): "signed by Mercado Pago; tenant routed from the payload",
    ("GET", "/api/webhook/{channel}/{slug}"): "channel verification handshake (provider-signed)",
    ("GET", "/api/webhook/{channel}"): "channel verification handshake (provider-signed)",
    ("POST", "/api/webhook/{channel}/{slug}"): "channel webhook, signature-verified",
    ("POST", "/api/webhook/{channel}"): "channel webhook, signature-verified",
}

GENERIC_BODY: dict[str, Any] = {
    "name": "probe", "email": "probe@example.com", "role": "MEMBER", "amount": "5.00", "plan": "starter",
    "successUrl": "https://x.example/ok", "cancelUrl": "https://x.example/no", "model": "mock-chat",
    "messages": [{"role": "user", "content": "hi"}], "input": "hi", "prompt": "hi", "max_tokens": 5,
    "allow_code_auth": True, "code": "ABCDEFGHJK", "provider": "openai", "api_key": "sk-probe-123", "text": "hi",
}
# Routes whose schema forbids the generic body's extra fields (or needs other values).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/ai/broker"): {"prompt": "hi"},
    ("POST", "/api/ai/broker/test"): {"prompt": "hi"},
    ("POST", "/api/payments/checkout"): {"amount": "5.00", "successUrl": "https://x.example/ok", "cancelUrl": "https://x.example/no"},
}


def api_routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(method, path) of every HTTP route, included routers expanded."""
    found: list[tuple[str, str]] = []

    def walk(routes) -> None:  # type: ignore[no-untyped-def]
        for route in routes:
            if hasattr(route, "effective_route_contexts"):
                walk(route.effective_route_contexts())
            elif getattr(route, "methods", None) and getattr(route, "include_in_schema", True) is not None:
                for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                    found.append((method, route.path))

    walk(app.routes)
    return [r for r in found if not r[1].startswith(("/docs", "/redoc", "/openapi"))]


def _owned_ids(broker, org_id: str) -> dict[str, str]:
    """table name -> an id of one row of `org_id` in every organization-owned table."""
    ids: dict[str, str] = {}
    with broker.db.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if "organization_id" in table.c and "id" in table.c:
                row = conn.execute(select(table.c.id).where(table.c.organization_id == org_id).limit(1)).first()
                if row is not None:
                    ids[table.name] = str(row[0])
    return ids


def _fill(path: str, org_id: str, owned: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        if name in ("organization_id", "organization", "organizationId"):
            return org_id
        stem = name.removesuffix("_id").rstrip("s")
        for table, row_id in owned.items():
            if stem and stem in table:
                return row_id
        return next(iter(owned.values()), "missing")

    return re.sub(r"\{([^}]+)\}", value, path)


def test_every_route_refuses_another_organization(broker):
    a = signup(broker, "alice@a.example", organization_name="Org A")
    b = signup(broker, "bob@b.example", organization_name="Org B")
    a_org = a["organization"]["id"]
    with broker.client() as http:
        a_key = http.post("/api/keys", json={"name": "a"}, headers=bearer(a["access_token"])).json()
        b_key = http.post("/api/keys", json={"name": "b"}, headers=bearer(b["access_token"])).json()
    owned = _owned_ids(broker, a_org)
    routes = api_routes(broker.app)
    assert ("POST", "/v1/chat/completions") in routes and ("GET", "/api/keys") in routes  # the walk sees included routers
    secrets_of_a = [a_org, a_key["id"], "alice@a.example"]

    leaks: list[str] = []
    with broker.client() as http:
        for method, path in routes:
            if (method, path) in EXEMPT:
                continue
            url = _fill(path, a_org, owned)
            for label, credential in (("B's owner JWT", b["access_token"]), ("B's API key", b_key["key"])):
                body = BODIES.get((method, path), GENERIC_BODY) if method in ("POST", "PUT", "PATCH") else None
                aimed = http.request(method, url, json=body,
                                     headers=bearer(credential, **{"x-organization-id": a_org}))
                # The console takes no bearer credentials: its pages send them to the sign-in form.
                to_sign_in = aimed.status_code == 303 and aimed.headers.get("location", "").startswith("/console/login")
                if aimed.status_code not in (401, 403, 404) and not to_sign_in:
                    leaks.append(f"{method} {path} with {label} aimed at A: {aimed.status_code} {aimed.text[:200]}")
                if method == "GET" and "{" not in path:
                    own = http.get(url, headers=bearer(credential))
                    if any(s in own.text for s in secrets_of_a):
                        leaks.append(f"GET {path} with {label} shows A's data")
    assert not leaks, "\n".join(leaks)


def test_exempt_routes_still_exist():
    """An exemption for a route that is gone is stale: remove it."""
    from aibroker.app import create_app

    routes = set(api_routes(create_app()))
    assert [r for r in EXEMPT if r not in routes] == []

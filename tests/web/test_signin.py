"""Sign-in, sign-out and the session cookie, in the browser and over HTTP."""

from __future__ import annotations

import re
from contextlib import closing

from tests.support.broker import BrokerServer
from tests.web.conftest import sign_in
from tests.web.support import Account, make_account, make_org, signed_in_client


def test_sign_in_shows_the_overview_and_sign_out_ends_the_session(page, console: BrokerServer, owner: Account) -> None:  # type: ignore[no-untyped-def]
    page.goto("/console")
    assert page.get_by_role("heading", name="Sign in to the console").is_visible()
    sign_in(page, owner)
    assert page.url.endswith("/console/overview")
    assert page.get_by_role("heading", name="Overview", exact=True).is_visible()
    assert page.get_by_test_id("balance").inner_text() == "$10.00"
    cookie = next(c for c in page.context.cookies() if c["name"] == "aibroker_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/console/login$"))
    assert page.get_by_role("status").inner_text() == "You are signed out."
    # The old cookie is dead on the server, not only forgotten by this browser.
    with console.client(follow_redirects=False, cookies={"aibroker_console": cookie["value"]}) as http:
        assert http.get("/console/overview").status_code == 303


def test_a_wrong_password_is_refused_on_the_form(page, owner: Account) -> None:  # type: ignore[no-untyped-def]
    page.problems.allow(r"401")  # the refused sign-in answers 401, as it should
    page.goto("/console/login")
    page.get_by_label("E-mail").fill(owner.email)
    page.get_by_label("Password").fill("not-the-password-1")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Incorrect e-mail or password."
    assert page.url.endswith("/console/login")


def test_signed_out_pages_redirect_to_the_sign_in_form(console: BrokerServer) -> None:
    with console.client(follow_redirects=False) as http:
        response = http.get("/console/overview")
        assert response.status_code == 303
        assert response.headers["location"] == "/console/login?next=%2Fconsole%2Foverview"
        assert http.get("/console").status_code == 200


def test_the_sign_in_form_needs_its_csrf_token(console: BrokerServer, owner: Account) -> None:
    with console.client(follow_redirects=False) as http:
        http.get("/console/login")
        response = http.post("/console/login", data={"email": owner.email, "password": owner.password, "csrf_token": "forged"})
        assert response.status_code == 403
        assert "aibroker_console" not in response.cookies


def test_sign_out_needs_the_sessions_csrf_token(console: BrokerServer, owner: Account) -> None:
    client, token = signed_in_client(console, owner)
    with closing(client):
        assert client.post("/console/logout", data={"csrf_token": "wrong"}).status_code == 403
        assert client.get("/console/overview").status_code == 200  # still signed in
        assert client.post("/console/logout", data={"csrf_token": token}).status_code == 303
        assert client.get("/console/overview").status_code == 303


def test_the_switcher_moves_between_own_organizations_only(console: BrokerServer, owner: Account) -> None:
    second = make_org(console, "Second")
    from tests.web.support import add_member

    add_member(console, second["organization_id"], owner.user_id, "ADMIN")
    stranger = make_org(console, "Stranger")
    client, token = signed_in_client(console, owner)
    with closing(client):
        moved = client.post("/console/organization", data={"csrf_token": token, "organization_id": second["organization_id"], "next": "/console/overview"})
        assert moved.status_code == 303
        page = client.get("/console/overview")
        assert 'selected>Second' in page.text and "(ADMIN)" in page.text
        refused = client.post("/console/organization", data={"csrf_token": token, "organization_id": stranger["organization_id"]})
        assert refused.status_code == 404


def test_a_member_of_no_organization_is_told_so(console: BrokerServer) -> None:
    account = make_account(console, "MEMBER")
    client, _ = signed_in_client(console, account)
    with closing(client):
        response = client.get("/console/overview")
        assert response.status_code == 403
        assert "VIEW_USAGE" in response.text


def test_the_organization_switcher_and_the_skip_link_work_from_the_keyboard(page, console: BrokerServer, owner: Account) -> None:  # type: ignore[no-untyped-def]
    from tests.web.support import add_member

    second = make_org(console, "Branch")
    add_member(console, second["organization_id"], owner.user_id, "AGENT")
    sign_in(page, owner)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")
    switcher = page.get_by_label("Organization")
    switcher.select_option(second["organization_id"])  # submits on change
    page.wait_for_function("document.querySelector('#org-switch').selectedOptions[0].text.includes('(AGENT)')")
    assert page.url.endswith("/console/overview")
    assert page.get_by_role("link", name="API keys").count() == 0  # an AGENT does not manage keys
    assert page.get_by_role("link", name="Usage").is_visible()

"""The tenant pages in the browser: the overview counts API calls, keys are shown once and revoked."""

from __future__ import annotations

import re

from tests.support.broker import BrokerServer
from tests.web.conftest import sign_in
from tests.web.support import Account


def _call(console: BrokerServer, key: str, times: int) -> None:
    with console.client(key) as http:
        for _ in range(times):
            response = http.post("/v1/chat/completions", json={"model": "mock-chat", "messages": [{"role": "user", "content": "Hello!"}]})
            assert response.status_code == 200, response.text
    console.flush()


def test_the_overview_shows_api_calls_in_its_numbers_and_charts(page, console: BrokerServer, owner: Account) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, owner)
    assert page.get_by_test_id("requests").inner_text() == "0"
    _call(console, owner.api_key, 3)
    page.reload()
    assert page.get_by_test_id("requests").inner_text() == "3"
    spent = page.get_by_test_id("spend-month").inner_text()
    assert spent != "$0.00" and page.get_by_test_id("spend-today").inner_text() == spent
    assert page.get_by_test_id("balance").inner_text() != "$10.00"
    assert page.get_by_test_id("error-rate").inner_text() == "0.0%"
    line = page.locator("figure.chart").nth(0)
    assert line.locator("circle.dot").count() == 30  # one point per day of the last 30
    assert "total " + spent in line.locator("desc").text_content()
    bars = page.locator("figure.chart").nth(1)
    assert bars.locator("rect.bar").count() == 1
    bars.locator("summary").click()  # the accessible data table
    assert bars.get_by_role("row", name=re.compile("mock-chat")).inner_text().endswith(spent)


def test_a_key_is_shown_once_then_revoked_and_stops_working(page, console: BrokerServer, owner: Account) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, owner)
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name", exact=True).fill("ci-key")
    page.get_by_label("Requests per minute").fill("120")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("new-key").inner_text().strip()
    assert secret.startswith("abk_")
    _call(console, secret, 1)  # the new key works
    page.goto("/console/keys")
    assert secret not in page.content()  # never shown again
    row = page.locator("tr", has_text="ci-key")
    assert row.get_by_text("active").is_visible()
    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke ci-key").click()
    page.wait_for_url(re.compile(r"/console/keys$"))
    assert page.get_by_role("status").inner_text() == "Key revoked: it no longer works."
    assert page.locator("tr", has_text="ci-key").get_by_text("revoked").is_visible()
    with console.client(secret) as http:
        refused = http.post("/v1/chat/completions", json={"model": "mock-chat", "messages": [{"role": "user", "content": "Hi"}]})
    assert refused.status_code == 401


def test_phone_width_pages_fit_and_usage_lists_the_records(page, console: BrokerServer, owner: Account) -> None:  # type: ignore[no-untyped-def]
    _call(console, owner.api_key, 2)
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, owner)
    for path in ("/console/overview", "/console/usage", "/console/wallet", "/console/keys", "/console/billing"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path  # no sideways scrolling
    page.goto("/console/usage")
    assert page.locator("tbody tr", has_text="mock-chat").count() == 2
    page.get_by_label("Status").select_option("error")
    page.get_by_role("button", name="Apply").click()
    assert page.get_by_text("No records match.").is_visible()

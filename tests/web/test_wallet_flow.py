"""Top-up from the wallet page: the browser goes to Stripe's checkout, the webhook credits the
wallet, the page shows the new balance. And the low-balance alert setting."""

from __future__ import annotations

import re

from tests.fakes.stripe_api import FakeStripe, event, sign
from tests.support.accounts import WEBHOOK_SECRET
from tests.support.broker import BrokerServer
from tests.web.conftest import sign_in
from tests.web.support import Account


def test_top_up_through_stripe_checkout_credits_the_wallet(page, console: BrokerServer, console_stripe: FakeStripe, owner: Account) -> None:  # type: ignore[no-untyped-def]
    # Stripe's hosted page (the fake's https URL) does not exist: the browser's visit to it fails, as expected.
    page.problems.allow(r"checkout\.stripe\.test")
    sign_in(page, owner)
    page.goto("/console/wallet")
    page.get_by_label("Amount").fill("20.00")
    page.get_by_label("Stripe (card)").check()
    with page.expect_response(re.compile(r"/console/wallet/topup$")) as answer_info:
        page.get_by_role("button", name="Go to checkout").click()
    answer = answer_info.value
    assert answer.status == 303
    checkout_url = answer.headers["location"]
    assert re.fullmatch(r"https://checkout\.stripe\.test/c/pay/cs_test\w+", checkout_url)
    session_id = checkout_url.rsplit("/", 1)[1]
    assert console_stripe.sessions[session_id]["amount_total"] == 2000
    assert console_stripe.sessions[session_id]["success_url"].endswith("/console/wallet?paid=1")
    payload = event("checkout.session.completed", console_stripe.completed(session_id), event_id=f"evt_{session_id}")
    with console.client() as http:
        answer = http.post("/api/payments/webhook", content=payload, headers={"stripe-signature": sign(payload, WEBHOOK_SECRET)})
    assert answer.status_code == 200, answer.text
    console.flush()
    page.goto("/console/wallet?paid=1")
    assert page.get_by_test_id("wallet-balance").inner_text() == "$30.00"
    newest = page.locator("tbody tr").first  # the ledger is newest first: the payment's recharge on top
    assert newest.locator("td").nth(1).inner_text() == "recharge" and newest.locator("td").nth(2).inner_text() == "$20.00"


def test_the_low_balance_alert_is_saved_and_bad_amounts_explained(page, owner: Account) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, owner)
    page.goto("/console/wallet")
    page.get_by_label(re.compile("Alert when the balance falls below")).fill("12.5")
    page.get_by_role("button", name="Save alert").click()
    assert page.get_by_role("status").first.inner_text() == "Low-balance alert saved."
    assert page.get_by_test_id("threshold").inner_text() == "$12.50"
    assert page.get_by_text("The balance is below the alert threshold.").is_visible()
    page.get_by_label("Amount").fill("lots")
    page.get_by_role("button", name="Go to checkout").click()
    assert page.get_by_role("alert").inner_text() == "Amount must be an amount such as 20 or 12.50."

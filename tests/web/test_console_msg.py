"""The messaging pages in the browser: a signed webhook opens a conversation that appears in
the inbox without a reload; a human reply reaches the fake WhatsApp Cloud API and the handoff
shows; the channels form shows the webhook URL and a verify token that works; the leads board
shows a HOT lead with its picture and score history. Live server on the fake Meta/TikTok APIs."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect

from tests.fakes.meta_graph import FakeGraphAPI
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.tiktok_api import FakeTikTokAPI
from tests.messaging.support import PHONE_ID, TOKENS, channel_body, inbound, post_webhook
from tests.support.broker import BrokerServer
from tests.web.conftest import sign_in
from tests.web.support import Account

WAIT = 10_000  # ms: the inbox polls every 1.5 s
# An inbox poll in flight when the page navigates away is aborted by the browser: expected, not
# a failure (the harness already tolerates the favicon's). Anything else still fails the test.
ABORTED = r"request failed: GET .*/console/api/inbox\S* net::ERR_ABORTED"
_suffixes = itertools.count(1)


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeGraphAPI, FakeTikTokAPI]]:
    with FakeGraphAPI() as graph, FakeTikTokAPI() as tiktok:
        yield graph, tiktok  # type: ignore[misc]


@pytest.fixture(scope="module")
def console(console_database: str, fake_openai: FakeOpenAI, fakes: tuple[FakeGraphAPI, FakeTikTokAPI],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerServer]:
    """tests/web/conftest.py's live server, with the senders pointed at the fake platform APIs
    and the auto-responder on the mock provider."""
    graph, tiktok = fakes
    env = {
        "AIBROKER_DATABASE_URL": console_database, "AIBROKER_STORAGE_DIR": str(tmp_path_factory.mktemp("storage")),
        "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.base_url, "AIBROKER_ADMIN_TOKEN": "test-admin-token",
        "AIBROKER_RETRY_BASE_SECONDS": "0.01", "AIBROKER_RETRY_MAX_SECONDS": "0.05", "AIBROKER_MOCK_LATENCY_MS": "5",
        "AIBROKER_DEFAULT_MODEL": "mock/mock-chat", "AIBROKER_META_GRAPH_URL": graph.base_url,
        "AIBROKER_TIKTOK_API_URL": tiktok.base_url,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        server = BrokerServer(console_database)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def slug_of(console: BrokerServer, organization_id: str) -> str:
    return console.scalar("select slug from organizations where id = :id", id=organization_id)


def run_jobs(console: BrokerServer) -> None:
    """Drain the due jobs (process_event, ai_response, send_*) through the cron route."""
    with console.admin() as admin:
        for _ in range(20):
            response = admin.post("/api/jobs/process", json={"max_jobs": 50})
            assert response.status_code == 200, response.text
            if response.json()["processed"] == 0:
                return
    raise AssertionError("jobs kept coming")


def connect_whatsapp(console: BrokerServer, account: Account, graph: FakeGraphAPI) -> tuple[str, str]:
    suffix = f"{next(_suffixes):03d}"
    with console.client(account.api_key) as api:
        assert api.post("/api/channels", json=channel_body("whatsapp", suffix=suffix)).status_code == 201
    graph.tokens[PHONE_ID + suffix] = TOKENS["whatsapp"]
    return suffix, slug_of(console, account.organization_id)


def deliver(console: BrokerServer, slug: str, text: str, *, suffix: str, user: str, name: str) -> None:
    payload, _ = inbound("whatsapp", text, suffix=suffix, user=user, name=name)
    with console.client() as http:
        response = post_webhook(http, "whatsapp", slug, payload)
    assert response.status_code == 200 and response.json()["received"] == 1, response.text
    run_jobs(console)


def test_answer_a_conversation_in_the_inbox_and_see_the_handoff(page, console: BrokerServer, fakes, owner: Account) -> None:  # type: ignore[no-untyped-def]
    graph, _ = fakes
    suffix, slug = connect_whatsapp(console, owner, graph)
    page.problems.allow(ABORTED)
    sign_in(page, owner)
    page.goto("/console/inbox")
    expect(page.get_by_test_id("conversations")).to_contain_text("No conversations here yet")
    page.evaluate("window.sameDocument = 'inbox'")

    # A signed inbound webhook creates the conversation; the open list shows it without a reload.
    deliver(console, slug, "Hola, quiero el precio", suffix=suffix, user="5491155550101", name="Ana Inbox")
    link = page.get_by_role("link", name="Ana Inbox")
    expect(link).to_be_visible(timeout=WAIT)
    expect(page.locator("#live-announcer")).to_contain_text("Conversation with Ana Inbox on whatsapp")
    assert page.evaluate("window.sameDocument") == "inbox"

    link.click()
    expect(page.get_by_role("heading", name="Conversation with Ana Inbox")).to_be_visible()
    expect(page.get_by_test_id("handled-by")).to_have_text("AI")
    expect(page.get_by_test_id("messages")).to_contain_text("Mock reply to: Hola, quiero el precio")  # the AI answered first

    page.get_by_label("Your reply").fill("Soy Marta: el precio es 120 USD")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status").filter(has_text="Reply queued")).to_be_visible()
    expect(page.get_by_test_id("handled-by")).to_have_text("Human")
    human = page.locator(".message.author-human")
    expect(human.get_by_test_id("delivery")).to_have_text("queued")

    # The send job posts it to the (fake) WhatsApp Cloud API; the thread shows "sent" by itself.
    page.evaluate("window.sameDocument = 'thread'")
    run_jobs(console)
    sent = [r for r in graph.sent() if r.path.endswith(f"/{PHONE_ID + suffix}/messages")]  # this test's number only
    assert [(r.body["to"], (r.body.get("text") or {}).get("body")) for r in sent] == [
        ("5491155550101", "Mock reply to: Hola, quiero el precio"), ("5491155550101", "Soy Marta: el precio es 120 USD")]
    assert sent[1].headers["authorization"] == "Bearer wa-token"
    expect(human.get_by_test_id("delivery")).to_have_text("sent", timeout=WAIT)

    # A new message from the lead appears in the open thread; the AI stays quiet (a human has it).
    deliver(console, slug, "¿Y el envío?", suffix=suffix, user="5491155550101", name="Ana Inbox")
    expect(page.locator(".message.author-lead").last).to_contain_text("¿Y el envío?", timeout=WAIT)
    expect(page.locator("#live-announcer")).to_contain_text("New message from Ana Inbox: ¿Y el envío?")
    assert page.evaluate("window.sameDocument") == "thread"
    expect(page.locator(".message.author-ai")).to_have_count(1)

    page.get_by_role("button", name="Hand to the AI").click()
    expect(page.get_by_test_id("handled-by")).to_have_text("AI")
    with console.client(owner.api_key) as api:
        [conversation] = api.get("/api/conversations").json()["data"]
    assert (conversation["handled_by"], conversation["status"]) == ("ai", "active")


def test_connect_a_channel_shows_the_webhook_url_and_a_working_verify_token(page, console: BrokerServer, owner: Account) -> None:  # type: ignore[no-untyped-def]
    slug = slug_of(console, owner.organization_id)
    page.problems.allow(ABORTED)
    sign_in(page, owner)
    page.goto("/console/channels")
    expect(page.get_by_test_id("no-connections")).to_be_visible()
    page.locator("summary", has_text="Connect Facebook Messenger").click()
    form = page.get_by_role("form", name="Connect Facebook Messenger")
    form.get_by_label("Page ID").fill("page-console-777")
    form.get_by_label("Page access token").fill("page-token-never-shown")
    form.get_by_label("App secret").fill("app-secret-never-shown")
    form.get_by_role("button", name="Connect Facebook Messenger").click()

    connected = page.get_by_test_id("connected")
    expect(connected).to_contain_text("Facebook Messenger connected")
    url = page.get_by_test_id("webhook-url").inner_text()
    token = page.get_by_test_id("verify-token").inner_text()
    assert url == f"{console.url}/api/webhook/facebook/{slug}" and len(token) >= 24
    html = page.content()
    assert "page-token-never-shown" not in html and "app-secret-never-shown" not in html
    # The token the page showed is the one the platform's verification GET must present.
    answer = httpx.get(url, params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "c-42"})
    assert (answer.status_code, answer.text) == (200, "c-42")

    row = page.get_by_test_id("connections").locator("tr", has_text="page-console-777")
    expect(row.get_by_test_id("ai-state")).to_have_text("AI on")
    row.get_by_role("button", name=re.compile("Turn AI off")).click()
    expect(page.get_by_role("status").filter(has_text="AI off for Facebook Messenger")).to_be_visible()
    row = page.get_by_test_id("connections").locator("tr", has_text="page-console-777")
    expect(row.get_by_test_id("ai-state")).to_have_text("AI off")
    assert token not in page.content()  # shown once, never again
    with console.client(owner.api_key) as api:
        [channel] = api.get("/api/channels").json()["data"]
    assert (channel["page_id"], channel["ai_enabled"], channel["has_verify_token"]) == ("page-console-777", False, True)


def test_the_leads_board_shows_a_hot_lead_with_its_picture_and_score_history(page, console: BrokerServer, fakes, owner: Account) -> None:  # type: ignore[no-untyped-def]
    graph, _ = fakes
    suffix, slug = connect_whatsapp(console, owner, graph)
    deliver(console, slug, "Quiero el precio, es urgente", suffix=suffix, user="5491155550202", name="Bruno Hot")
    deliver(console, slug, "hola", suffix=suffix, user="5491155550303", name="Carla Warm")
    picture = f"{console.url}/console/static/favicon.svg"  # this server's: the page shows https or its own origin
    with console.db.begin() as conn:
        conn.exec_driver_sql("UPDATE leads SET profile_picture_url = %s WHERE name = %s" if "postgresql" in console.database_url
                             else "UPDATE leads SET profile_picture_url = ? WHERE name = ?", (picture, "Bruno Hot"))
    page.problems.allow(ABORTED)
    sign_in(page, owner)
    page.goto("/console/leads")
    hot, warm = page.get_by_test_id("column-HOT"), page.get_by_test_id("column-WARM")
    expect(hot.get_by_role("link", name="Bruno Hot")).to_be_visible()
    expect(warm.get_by_role("link", name="Carla Warm")).to_be_visible()
    expect(hot).not_to_contain_text("Carla Warm")
    image = hot.get_by_role("img", name="Profile picture of Bruno Hot")
    expect(image).to_have_attribute("src", picture)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())

    hot.get_by_role("link", name="Bruno Hot").click()
    expect(page.get_by_test_id("score")).to_have_text("75")
    expect(page.get_by_test_id("classification")).to_have_text("HOT")
    history = page.get_by_test_id("score-history")
    expect(history).to_contain_text("interested")
    expect(history).to_contain_text("urgent")
    expect(page.get_by_role("img", name=re.compile("Score of Bruno Hot"))).to_be_visible()


def test_phone_width_keeps_the_thread_and_the_board_usable(page, console: BrokerServer, fakes, owner: Account) -> None:  # type: ignore[no-untyped-def]
    graph, _ = fakes
    suffix, slug = connect_whatsapp(console, owner, graph)
    deliver(console, slug, "Hola desde el teléfono", suffix=suffix, user="5491155550404", name="Dora Phone")
    page.problems.allow(ABORTED)
    page.set_viewport_size({"width": 390, "height": 800})
    sign_in(page, owner)
    fits = "document.documentElement.scrollWidth <= window.innerWidth + 1"
    page.goto("/console/leads")
    expect(page.get_by_test_id("column-WARM").get_by_role("link", name="Dora Phone")).to_be_visible()
    assert page.evaluate(fits)
    page.goto("/console/inbox")
    page.get_by_role("link", name="Dora Phone").click()
    expect(page.get_by_test_id("messages")).to_contain_text("Hola desde el teléfono")
    box = page.get_by_label("Your reply").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate(fits)

"""The playground and the templates pages in the browser: a chat streams through the
conversations service and shows each answer's cost (equal to its usage record's billed
cost); a template made on its page is used in the chat with its variables and counted;
access: another organization's items 404, a weaker role 403, signed out -> sign-in."""

from __future__ import annotations

import re
from contextlib import closing

from playwright.sync_api import expect

from aibroker.models import AiConversation, AiPromptTemplate, UsageRecord
from tests.support.broker import BrokerServer
from tests.web.conftest import sign_in
from tests.web.support import Account, make_account, signed_in_client

ASK = "What does the broker do?"


def open_signed_in(page, account: Account, path: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in, then open `path`. Leaving a page before its favicon arrived aborts that
    request: harmless (nothing on the page failed), so it is the one failure tolerated."""
    page.problems.allow(r"/console/static/favicon\.svg net::ERR_ABORTED$")
    sign_in(page, account)
    page.goto(path)


def fits_a_phone(page) -> bool:  # type: ignore[no-untyped-def]
    """The page at phone width (390 px): nothing wider than the screen (wide tables scroll in their own box)."""
    page.set_viewport_size({"width": 390, "height": 844})
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _send(page, text: str):  # type: ignore[no-untyped-def]
    """Type and send a message; the streamed response, once the answer's cost is shown."""
    costs = page.locator(".chat-assistant .chat-cost")
    before = costs.count()
    page.get_by_label("Message").fill(text)
    with page.expect_response(re.compile(r"/console/api/playground/conversations/[^/]+/messages$")) as answer:
        page.get_by_role("button", name="Send").click()
    expect(costs).to_have_count(before + 1)
    return answer.value


def test_a_chat_streams_and_shows_what_each_answer_cost(page, console: BrokerServer, owner: Account) -> None:  # type: ignore[no-untyped-def]
    open_signed_in(page, owner, "/console/playground")
    page.get_by_label("Model").select_option("mock/mock-chat")
    response = _send(page, ASK)
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    answer = page.locator(".chat-assistant").last
    assert answer.locator(".chat-text").inner_text() == f"Mock reply to: {ASK}"
    assert int(answer.get_attribute("data-deltas")) == len(f"Mock reply to: {ASK}".split())  # word by word, as the mock streams
    cost = answer.locator(".chat-cost")
    micros, request_id = int(cost.get_attribute("data-cost-micros")), cost.get_attribute("data-request-id")
    console.flush()
    [record] = console.rows(UsageRecord, UsageRecord.request_id == request_id)
    assert (record.organization_id, record.user_id, record.feature, record.status) == (owner.organization_id, owner.user_id, "ai_conversation", "success")
    assert micros == record.billed_cost_micros > 0
    assert cost.inner_text().startswith("Cost " + page.evaluate("m => window.aibrokerMoney(m)", micros))
    # A second turn: the total adds up, and the conversation page shows both answers' costs.
    _send(page, "And then?")
    costs = [int(c.get_attribute("data-cost-micros")) for c in page.locator(".chat-cost").all()]
    assert len(costs) == 2 and int(page.locator("#chat-total").get_attribute("data-cost-micros")) == sum(costs)
    conversation_id = page.locator("#playground").get_attribute("data-conversation")
    page.goto(f"/console/playground/conversations/{conversation_id}")
    assert [int(c.get_attribute("data-cost-micros")) for c in page.locator(".chat-cost").all()] == costs
    [row] = console.rows(AiConversation, AiConversation.id == conversation_id)
    assert row.cost_micros == sum(costs) and row.message_count == 4
    assert fits_a_phone(page)


def test_a_template_made_on_its_page_leads_the_chat_and_is_counted(page, console: BrokerServer, owner: Account) -> None:  # type: ignore[no-untyped-def]
    open_signed_in(page, owner, "/console/playground/templates/new")
    page.get_by_label("Name").fill("Greeting")
    page.get_by_label("Prompt", exact=True).fill("Greet {{ customer }} warmly.")
    page.get_by_role("button", name="Create template").click()
    page.wait_for_url(re.compile(r"/console/playground/templates/tpl_"))
    assert page.get_by_test_id("template-usage").inner_text() == "0"
    template_id = page.url.rsplit("/", 1)[-1]
    # The dry run renders without a model call (and is no use).
    page.get_by_label("Variables (JSON object)").fill('{"customer": "Ana"}')
    page.get_by_role("button", name="Render").click()
    assert page.locator("#dry-run-result").inner_text() == "Greet Ana warmly."

    page.goto("/console/playground")
    page.get_by_label("Model").select_option("mock/mock-chat")
    page.get_by_label("Prompt template (optional)").select_option(template_id)
    page.get_by_label("customer (required)").fill("Bea")
    _send(page, "Thanks for the order.")
    assert page.locator(".chat-assistant .chat-text").last.inner_text() == "Mock reply to: Greet Bea warmly. Thanks for the order."
    [row] = console.rows(AiPromptTemplate, AiPromptTemplate.id == template_id)
    assert row.usage_count == 1
    page.goto("/console/playground/templates")
    assert page.locator(f'tr[data-id="{template_id}"] [data-field="usage"]').inner_text() == "1"


def test_a_refused_template_shows_the_form_again_with_the_reason(page, owner: Account) -> None:  # type: ignore[no-untyped-def]
    # The refusal is a 400, as it should be (the browser logs it as a failed load).
    page.problems.allow(r"HTTP 400: POST .*/console/playground/templates$")
    page.problems.allow(r"status of 400 \(Bad Request\)")
    open_signed_in(page, owner, "/console/playground/templates/new")
    page.get_by_label("Name").fill("Broken")
    page.get_by_label("Prompt", exact=True).fill("Hello {{ name ")
    page.get_by_role("button", name="Create template").click()
    assert "line 1" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Name").input_value() == "Broken"  # what was typed is kept


def _other_orgs_items(console: BrokerServer, stranger: Account) -> tuple[str, str]:
    """A conversation and a template of another organization (made through the API)."""
    with console.client(stranger.api_key) as http:
        conversation = http.post("/api/ai/conversations", json={"model": "mock/mock-chat"}).json()["id"]
        template = http.post("/api/ai/templates", json={"name": "Theirs", "prompt": "Hi {{ x }}"}).json()["id"]
    return conversation, template


def test_access_other_organizations_roles_and_signed_out(console: BrokerServer, owner: Account) -> None:
    stranger = make_account(console, "OWNER")
    conversation, template = _other_orgs_items(console, stranger)
    member = make_account(console, "MEMBER", {"organization_id": owner.organization_id, "api_key": owner.api_key})
    client, token = signed_in_client(console, owner)
    with closing(client):
        assert client.get(f"/console/playground/conversations/{conversation}").status_code == 404
        assert client.get(f"/console/playground/templates/{template}").status_code == 404
        headers = {"x-csrf-token": token}
        sent = client.post(f"/console/api/playground/conversations/{conversation}/messages", json={"content": "hi"}, headers=headers)
        assert sent.status_code == 404
        assert client.post(f"/console/api/playground/templates/{template}/render", json={}, headers=headers).status_code == 404
        edit = client.post(f"/console/playground/templates/{template}", data={"csrf_token": token, "name": "Mine", "prompt": "x"})
        assert edit.status_code == 404
        # Without the CSRF header a fetch endpoint refuses (403), and bad input is a 400.
        assert client.post("/console/api/playground/conversations", json={}).status_code == 403
        assert client.post("/console/api/playground/conversations", json={"model": "nope/none"}, headers=headers).status_code in (400, 404)
        assert client.post("/console/api/playground/conversations", content=b"[1]", headers=headers).status_code == 400
    client, token = signed_in_client(console, member)
    with closing(client):
        assert client.get("/console/playground").status_code == 200  # members use the AI ...
        page_html = client.get("/console/playground/templates").text
        assert "New template" not in page_html
        assert client.get("/console/playground/templates/new").status_code == 403  # ... but do not write templates
        with console.client(owner.api_key) as http:
            ours = http.post("/api/ai/templates", json={"name": "Ours", "prompt": "Hi {{ x }}"}).json()["id"]
        rendered = client.post(f"/console/api/playground/templates/{ours}/render", json={"variables": {"x": "y"}},
                               headers={"x-csrf-token": token})
        assert rendered.status_code == 200 and rendered.json()["content"] == "Hi y"  # the member's CSRF token is good: the 403s are the role's
        made = client.post("/console/playground/templates", data={"csrf_token": token, "name": "X", "prompt": "Hi"})
        assert made.status_code == 403
    with console.client(follow_redirects=False) as anonymous:
        for path in ("/console/playground", "/console/playground/templates", f"/console/playground/conversations/{conversation}"):
            answer = anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login?next=")
        assert anonymous.post("/console/api/playground/conversations", json={}).status_code == 401


def test_an_edit_is_a_new_version_and_the_old_one_still_renders(console: BrokerServer, owner: Account) -> None:
    client, token = signed_in_client(console, owner)
    with closing(client):
        made = client.post("/console/playground/templates", data={"csrf_token": token, "name": "Offer", "prompt": "Offer {{ item }}."})
        assert made.status_code == 303
        path = made.headers["location"]
        edited = client.post(path, data={"csrf_token": token, "name": "Offer", "prompt": "Offer {{ item }} today.", "variables": ""})
        assert edited.status_code == 303 and edited.headers["location"] == path
        page_html = client.get(path).text
        assert 'data-testid="template-version">2<' in page_html
        old = client.post(path + "/render", data={"csrf_token": token, "variables": '{"item": "tea"}', "version": "1"})
        assert old.status_code == 200 and "Offer tea.</pre>" in old.text
        missing = client.post(path + "/render", data={"csrf_token": token, "variables": "{}"})
        assert missing.status_code == 400 and 'id="dry-run-error"' in missing.text  # a required variable is missing
        not_json = client.post(path + "/render", data={"csrf_token": token, "variables": "{nope"})
        assert not_json.status_code == 400


def test_a_system_template_becomes_the_conversations_instructions(console: BrokerServer, owner: Account) -> None:
    with console.client(owner.api_key) as http:
        template = http.post("/api/ai/templates", json={"name": "Tone", "role": "system", "prompt": "Answer in {{ lang }}."}).json()["id"]
    client, token = signed_in_client(console, owner)
    headers = {"x-csrf-token": token}
    with closing(client):
        conversation = client.post("/console/api/playground/conversations", json={"model": "mock/mock-chat"}, headers=headers).json()["id"]
        turn = {"content": "", "template": {"id": template, "variables": {"lang": "Spanish"}}}
        empty = client.post(f"/console/api/playground/conversations/{conversation}/messages", json=turn, headers=headers)
        assert empty.status_code == 400  # instructions alone are no message
        turn["content"] = "Hello"
        answer = client.post(f"/console/api/playground/conversations/{conversation}/messages", json=turn, headers=headers)
        assert answer.status_code == 200 and "event: message" in answer.text
    [row] = console.rows(AiConversation, AiConversation.id == conversation)
    assert row.system_prompt == "Answer in Spanish." and row.message_count == 2
    [used] = console.rows(AiPromptTemplate, AiPromptTemplate.id == template)
    assert used.usage_count == 1  # the refused turn did not count a use

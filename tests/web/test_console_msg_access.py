"""Who may open and change the messaging pages: signed out -> sign-in, a role without
MANAGE_CHANNELS -> 403, another organization's conversation, lead or channel -> 404, forms
without the session's CSRF token -> 403, bad input -> 400 (never a 500). Over HTTP."""

from __future__ import annotations

import itertools
from contextlib import closing
from dataclasses import dataclass

import pytest

from tests.messaging.support import channel_body, inbound, post_webhook
from tests.support.broker import BrokerServer
from tests.web.support import Account, make_account, signed_in_client

PAGES = ["/console/channels", "/console/ai-config", "/console/inbox", "/console/leads"]
_suffixes = itertools.count(500)


@dataclass
class Thread:
    conversation_id: str
    lead_id: str
    channel_id: str
    phone_number_id: str


def open_thread(console: BrokerServer, account: Account, text: str = "hola") -> Thread:
    """A WhatsApp channel (AI off) and one conversation in the account's organization, from a signed webhook."""
    suffix = f"{next(_suffixes)}"
    body = {**channel_body("whatsapp", suffix=suffix), "ai_enabled": False}
    with console.client(account.api_key) as api:
        created = api.post("/api/channels", json=body)
        assert created.status_code == 201, created.text
        slug = console.scalar("select slug from organizations where id = :id", id=account.organization_id)
        with console.client() as http:
            assert post_webhook(http, "whatsapp", slug, inbound("whatsapp", text, suffix=suffix)[0]).status_code == 200
        with console.admin() as admin:
            assert admin.post("/api/jobs/process", json={"max_jobs": 20}).json()["failed"] == 0
        [conversation] = api.get("/api/conversations").json()["data"]
    return Thread(conversation["id"], conversation["lead_id"], created.json()["id"], body["credentials"]["phone_number_id"])


@pytest.fixture(scope="module")
def other(console: BrokerServer) -> tuple[Account, Thread]:
    account = make_account(console, "OWNER")
    return account, open_thread(console, account)


def test_signed_out_pages_go_to_the_sign_in_form_and_fetches_get_401(console: BrokerServer, other) -> None:  # type: ignore[no-untyped-def]
    _, thread = other
    with console.client(follow_redirects=False) as http:
        for path in [*PAGES, f"/console/inbox/{thread.conversation_id}", f"/console/leads/{thread.lead_id}"]:
            response = http.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith("/console/login?next="), path
        assert http.get("/console/api/inbox").status_code == 401
        assert http.get(f"/console/api/inbox/{thread.conversation_id}").status_code == 401
        assert http.post(f"/console/inbox/{thread.conversation_id}/handoff", data={"to": "human"}).status_code == 303


@pytest.mark.parametrize("role", ["DISTRIBUTOR", "MEMBER"])
def test_a_role_without_manage_channels_is_refused(console: BrokerServer, role: str) -> None:
    account = make_account(console, role)
    thread = open_thread(console, account)
    client, token = signed_in_client(console, account)
    with closing(client):
        for path in [*PAGES, f"/console/inbox/{thread.conversation_id}", f"/console/leads/{thread.lead_id}",
                     f"/console/api/inbox/{thread.conversation_id}"]:
            assert client.get(path).status_code == 403, path
        posts = {f"/console/inbox/{thread.conversation_id}/reply": {"content": "hi"},
                 f"/console/inbox/{thread.conversation_id}/handoff": {"to": "ai"},
                 f"/console/channels/{thread.channel_id}/ai": {"ai_enabled": "on"},
                 "/console/ai-config": {"system_prompt": "x"}, "/console/channels": {"channel": "whatsapp"}}
        for path, data in posts.items():
            assert client.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    with console.client(account.api_key) as api:
        assert api.get("/api/conversations").json()["data"][0]["handled_by"] == "ai"  # nothing changed


def test_an_agent_may_work_the_inbox(console: BrokerServer) -> None:
    account = make_account(console, "AGENT")
    thread = open_thread(console, account)
    client, token = signed_in_client(console, account)
    with closing(client):
        for path in [*PAGES, f"/console/inbox/{thread.conversation_id}"]:
            assert client.get(path).status_code == 200, path
        assert thread.conversation_id in client.get("/console/inbox?status=active").text
        moved = client.post(f"/console/inbox/{thread.conversation_id}/handoff", data={"to": "human", "csrf_token": token})
        assert moved.status_code == 303
        # Handed to a human, it waits under "pending" (the inbox's filter by status).
        assert thread.conversation_id in client.get("/console/inbox?status=pending").text
        assert thread.conversation_id not in client.get("/console/inbox?status=active").text
        assert thread.conversation_id in client.get("/console/api/inbox?status=pending").json()["parts"]["conversations"]
    with console.client(account.api_key) as api:
        conversation = api.get("/api/conversations").json()["data"][0]
    assert (conversation["handled_by"], conversation["status"]) == ("human", "pending")


def test_another_organizations_conversations_leads_and_channels_are_404(console: BrokerServer, owner: Account, other) -> None:  # type: ignore[no-untyped-def]
    stranger, thread = other
    client, token = signed_in_client(console, owner)
    with closing(client):
        for path in [f"/console/inbox/{thread.conversation_id}", f"/console/leads/{thread.lead_id}", f"/console/api/inbox/{thread.conversation_id}"]:
            assert client.get(path).status_code == 404, path
        posts = {f"/console/inbox/{thread.conversation_id}/reply": {"content": "not yours"},
                 f"/console/inbox/{thread.conversation_id}/handoff": {"to": "human"},
                 f"/console/inbox/{thread.conversation_id}/status": {"status": "closed"},
                 f"/console/channels/{thread.channel_id}/ai": {"ai_enabled": "on"},
                 f"/console/channels/{thread.channel_id}/delete": {}}
        for path, data in posts.items():
            assert client.post(path, data={**data, "csrf_token": token}).status_code == 404, path
        # Nor do they show on this organization's pages.
        assert thread.conversation_id not in client.get("/console/inbox").text
        assert thread.lead_id not in client.get("/console/leads").text
        assert thread.channel_id not in client.get("/console/channels").text
    with console.client(stranger.api_key) as api:
        [conversation] = api.get("/api/conversations").json()["data"]
        [channel] = api.get("/api/channels").json()["data"]
        messages = api.get(f"/api/conversations/{thread.conversation_id}/messages").json()["data"]
    assert (conversation["handled_by"], conversation["status"], channel["ai_enabled"]) == ("ai", "active", False)
    assert [m["direction"] for m in messages] == ["inbound"]


def test_forms_need_the_sessions_csrf_token(console: BrokerServer) -> None:
    account = make_account(console, "OWNER")
    thread = open_thread(console, account)
    client, _ = signed_in_client(console, account)
    with closing(client):
        for path, data in {f"/console/inbox/{thread.conversation_id}/reply": {"content": "hi"},
                           f"/console/inbox/{thread.conversation_id}/handoff": {"to": "human"},
                           f"/console/channels/{thread.channel_id}/delete": {}, "/console/ai-config": {"system_prompt": "x"}}.items():
            assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 403, path
    with console.client(account.api_key) as api:
        assert len(api.get("/api/channels").json()["data"]) == 1


def test_bad_input_is_a_clear_400_or_409(console: BrokerServer) -> None:
    account = make_account(console, "OWNER")
    thread = open_thread(console, account)
    client, token = signed_in_client(console, account)
    conversation = f"/console/inbox/{thread.conversation_id}"
    with closing(client):
        assert client.get("/console/inbox?status=bogus").status_code == 400
        assert client.get("/console/leads?channel=myspace").status_code == 400
        assert client.get("/console/leads?channel=whatsapp").status_code == 200
        assert client.post(f"{conversation}/handoff", data={"to": "robot", "csrf_token": token}).status_code == 400
        assert client.post(f"{conversation}/status", data={"status": "gone", "csrf_token": token}).status_code == 400
        empty = client.post(f"{conversation}/reply", data={"content": "   ", "csrf_token": token})
        assert empty.status_code == 400 and "1 to 6000 characters" in empty.text
        missing = client.post("/console/channels", data={"channel": "facebook", "facebook_page_id": "p-1", "csrf_token": token})
        assert missing.status_code == 400 and "need: access_token" in missing.text
        assert client.post("/console/channels", data={"channel": "myspace", "csrf_token": token}).status_code == 400
        taken = client.post("/console/channels", data={"channel": "whatsapp", "csrf_token": token, "whatsapp_app_secret": "s",
                                                       "whatsapp_phone_number_id": thread.phone_number_id,
                                                       "whatsapp_access_token": "t"})
        assert taken.status_code == 409 and "already connected" in taken.text
        hot = client.post("/console/ai-config", data={"csrf_token": token, "system_prompt": "Be kind", "temperature": "3",
                                                      "max_tokens": "200", "auto_escalate_after_messages": "3"})
        assert hot.status_code == 400 and "temperature" in hot.text
        hours = client.post("/console/ai-config", data={"csrf_token": token, "system_prompt": "Be kind", "temperature": "0.3",
                                                        "max_tokens": "200", "auto_escalate_after_messages": "3", "hours_enabled": "on",
                                                        "timezone": "Mars/Olympus", "hours_mon": "09:00-18:00"})
        assert hours.status_code == 400 and "Unknown time zone" in hours.text
        style = client.post("/console/ai-config", data={"csrf_token": token, "system_prompt": "Be kind", "temperature": "0.3", "max_tokens": "200",
                                                        "auto_escalate_after_messages": "3", "response_style": "other"})
        assert style.status_code == 400 and "Describe the other response style" in style.text
        # Closing the conversation, then replying: the service refuses (400), nothing is queued.
        assert client.post(f"{conversation}/status", data={"status": "closed", "csrf_token": token}).status_code == 303
        closed = client.post(f"{conversation}/reply", data={"content": "late", "csrf_token": token})
        assert closed.status_code == 400 and "closed" in closed.text
    assert console.scalar("select count(*) from messages where conversation_id = :c", c=thread.conversation_id) == 1


def test_a_message_is_shown_as_text_never_as_markup(console: BrokerServer) -> None:
    account = make_account(console, "OWNER")
    thread = open_thread(console, account, text='<img src=x onerror="alert(1)">hola')
    client, _ = signed_in_client(console, account)
    with closing(client):
        page = client.get(f"/console/inbox/{thread.conversation_id}").text
        live = client.get(f"/console/api/inbox/{thread.conversation_id}").json()["parts"]["messages"]
    for html in (page, live):
        assert "<img src=x" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;hola" in html


def test_ai_configuration_saves_through_the_api_model(console: BrokerServer, owner: Account) -> None:
    client, token = signed_in_client(console, owner)
    with closing(client):
        saved = client.post("/console/ai-config", data={
            "csrf_token": token, "system_prompt": "Eres el asistente de TIS TIS.", "response_style": "other",
            "response_style_other": "cálido y breve", "temperature": "0.4", "max_tokens": "300", "model": "",
            "hours_enabled": "on", "timezone": "America/Mexico_City", "hours_mon": "09:00-13:00, 15:00-19:00", "hours_sat": "10:00-14:00",
            "away_message": "Volvemos a las 9.", "escalation_keywords": "humano, gerente", "auto_escalate_after_messages": "4",
        })
        assert saved.status_code == 303 and saved.headers["location"] == "/console/ai-config"
        page = client.get("/console/ai-config").text
        assert "AI configuration saved." in page and "09:00-13:00, 15:00-19:00" in page
    with console.client(owner.api_key) as api:
        context = api.get("/api/ai/context").json()
    assert context["business_hours"] == {"timezone": "America/Mexico_City",
                                         "schedule": {"mon": [["09:00", "13:00"], ["15:00", "19:00"]], "sat": [["10:00", "14:00"]]}}
    assert (context["system_prompt"], context["response_style"], context["temperature"], context["max_tokens"]) == (
        "Eres el asistente de TIS TIS.", "cálido y breve", 0.4, 300)
    assert (context["escalation_keywords"], context["auto_escalate_after_messages"], context["scoring_enabled"], context["model"]) == (
        ["humano", "gerente"], 4, False, None)

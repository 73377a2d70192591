"""Escalation and handoff, refusals by the gateway (402), business hours, each channel's
window rules, platform errors mapped to retry or give up, and the cron / admin job routes."""

from __future__ import annotations

import time

from aibroker.models import Event
from tests.fakes.meta_graph import Reply, graph_error
from tests.fakes.tiktok_api import tiktok_error
from tests.messaging.conftest import CRON_SECRET
from tests.messaging.support import connect, inbound, post_webhook, run_jobs
from tests.messaging.test_flow import allow_sends


def _setup(broker, graph, tiktok, channel, credit="10", **kw):
    org = broker.create_org("Acme", credit=credit, slug="acme")
    allow_sends(graph, tiktok, channel)
    connect(broker, org["api_key"], channel, **kw)
    return org


def _say(broker, channel, text, **kw):
    with broker.client() as client:
        assert post_webhook(client, channel, "acme", inbound(channel, text, **kw)[0]).status_code == 200
    return run_jobs(broker)


def _messages(broker, org):
    with broker.client(org["api_key"]) as api:
        [conversation] = api.get("/api/conversations").json()["data"]
        return conversation, api.get(f"/api/conversations/{conversation['id']}/messages").json()["data"]


def _events(broker, type_):
    return broker.rows(Event, Event.type == type_)


def test_keyword_escalates_then_agent_replies_and_hands_back(broker, graph, tiktok):
    org = _setup(broker, graph, tiktok, "facebook")
    _say(broker, "facebook", "Quiero hablar con un humano por favor")
    conversation, messages = _messages(broker, org)
    assert (conversation["status"], conversation["handled_by"]) == ("pending", "human")
    assert "humano" in conversation["escalation_reason"] and [m["direction"] for m in messages] == ["inbound"]
    [event] = _events(broker, "conversation.escalated")
    assert event.payload["conversation_id"] == conversation["id"]
    _say(broker, "facebook", "hola?")  # the AI stays quiet while a human handles it
    assert [m["author"] for m in _messages(broker, org)[1]] == ["lead", "lead"]

    with broker.client(org["api_key"]) as api:
        sent = api.post(f"/api/conversations/{conversation['id']}/messages", json={"content": "Soy Marta, ¿en qué te ayudo?"})
        assert sent.status_code == 202
        run_jobs(broker)
        back = api.post(f"/api/conversations/{conversation['id']}/handoff", json={"to": "ai"})
    assert back.json()["handled_by"] == "ai" and back.json()["status"] == "active"
    assert graph.sent()[-1].body["message"]["text"] == "Soy Marta, ¿en qué te ayudo?"
    _say(broker, "facebook", "gracias")
    assert [m["author"] for m in _messages(broker, org)[1]][-2:] == ["lead", "ai"]


def test_auto_escalation_after_n_ai_replies(broker, graph, tiktok):
    org = _setup(broker, graph, tiktok, "whatsapp")
    with broker.client(org["api_key"]) as api:
        assert api.put("/api/ai/context", json={"auto_escalate_after_messages": 2}).status_code == 200
    for text in ("uno", "dos", "tres"):
        _say(broker, "whatsapp", text)
    conversation, messages = _messages(broker, org)
    assert [m["author"] for m in messages] == ["lead", "ai", "lead", "ai", "lead"]
    assert conversation["handled_by"] == "human" and "2 AI replies" in conversation["escalation_reason"]


def test_empty_wallet_blocks_the_reply_and_notifies(broker, graph, tiktok):
    org = _setup(broker, graph, tiktok, "whatsapp", credit=None)
    totals = _say(broker, "whatsapp", "hola, precio?")
    assert totals["failed"] == 0
    _, messages = _messages(broker, org)
    assert [m["direction"] for m in messages] == ["inbound"] and graph.sent() == []
    [event] = _events(broker, "auto_reply.blocked")
    assert event.payload["status"] == 402 and event.organization_id == org["organization_id"]


def test_outside_business_hours_sends_the_away_message_once(broker, graph, tiktok):
    org = _setup(broker, graph, tiktok, "whatsapp")
    closed = {"timezone": "America/Mexico_City", "schedule": {}}  # never open
    with broker.client(org["api_key"]) as api:
        context = api.put("/api/ai/context", json={"business_hours": closed, "away_message": "Abrimos a las 9."})
        assert context.status_code == 200 and context.json()["configured"] is True
        bad = api.put("/api/ai/context", json={"business_hours": {"timezone": "Mars/Base", "schedule": {}}})
        assert bad.status_code == 400
    _say(broker, "whatsapp", "hola")
    _say(broker, "whatsapp", "¿hola?")
    _, messages = _messages(broker, org)
    assert [(m["author"], m["content"]) for m in messages if m["direction"] == "outbound"] == [("system", "Abrimos a las 9.")]


def test_whatsapp_outside_24h_needs_a_template(broker, graph, tiktok):
    org = _setup(broker, graph, tiktok, "whatsapp")
    _say(broker, "whatsapp", "hola", at=time.time() - 25 * 3600)
    _, messages = _messages(broker, org)
    assert messages[-1]["status"] == "blocked" and "24-hour" in messages[-1]["error"] and graph.sent() == []


def test_whatsapp_template_outside_window(broker, graph, tiktok):
    _setup(broker, graph, tiktok, "whatsapp", template={"name": "hello_again", "language": "es"})
    _say(broker, "whatsapp", "hola", at=time.time() - 25 * 3600)
    [sent] = graph.sent()
    assert sent.body["type"] == "template" and sent.body["template"] == {"name": "hello_again", "language": {"code": "es"}}


def test_messenger_human_agent_tag_between_24h_and_7d(broker, graph, tiktok):
    org = _setup(broker, graph, tiktok, "facebook")
    _say(broker, "facebook", "hola", at=time.time() - 48 * 3600)
    conversation, messages = _messages(broker, org)
    assert messages[-1]["status"] == "blocked" and graph.sent() == []  # the bot may not use the tag
    with broker.client(org["api_key"]) as api:
        api.post(f"/api/conversations/{conversation['id']}/messages", json={"content": "Hola, soy Marta"})
    run_jobs(broker)
    [sent] = graph.sent()
    assert (sent.body["messaging_type"], sent.body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_platform_5xx_is_retried_after_backoff(broker, graph, tiktok, clock):
    org = _setup(broker, graph, tiktok, "whatsapp")
    graph.script(Reply(503, {"error": {"message": "Service temporarily unavailable", "code": 2}}))
    totals = _say(broker, "whatsapp", "hola")
    assert totals["retried"] == 1
    assert _messages(broker, org)[1][-1]["status"] == "sending"  # reserved, not confirmed: retried later
    clock[0] += 120  # past the backoff
    run_jobs(broker)
    assert _messages(broker, org)[1][-1]["status"] == "sent" and len(graph.sent()) == 2


def test_tiktok_error_code_with_http_200_gives_up_and_admin_retries(broker, graph, tiktok):
    org = _setup(broker, graph, tiktok, "tiktok")
    tiktok.script(tiktok_error(40105, "Access token is invalid"))
    assert _say(broker, "tiktok", "hola")["failed"] == 1
    reply = _messages(broker, org)[1][-1]
    assert reply["status"] == "failed" and "40105" in reply["error"]
    with broker.admin() as admin:
        [dead] = admin.get("/api/admin/jobs", params={"status": "failed"}).json()["data"]
        assert dead["type"] == "messaging.send_tiktok"
        assert admin.post(f"/api/admin/jobs/{dead['id']}/retry").json()["status"] == "pending"
        assert admin.post(f"/api/admin/jobs/{dead['id']}/retry").status_code == 409
    run_jobs(broker)
    assert _messages(broker, org)[1][-1]["status"] == "sent"


def test_invalid_graph_token_gives_up(broker, graph, tiktok):
    org = _setup(broker, graph, tiktok, "instagram")
    graph.script(graph_error(400, 190, "Invalid OAuth access token."))
    assert _say(broker, "instagram", "hola")["failed"] == 1
    assert _messages(broker, org)[1][-1]["status"] == "failed"


def test_tiktok_message_cap_per_window(broker, graph, tiktok):
    org = _setup(broker, graph, tiktok, "tiktok")
    _say(broker, "tiktok", "hola")
    conversation, _ = _messages(broker, org)
    with broker.client(org["api_key"]) as api:
        for i in range(10):
            api.post(f"/api/conversations/{conversation['id']}/messages", json={"content": f"msg {i}"})
    run_jobs(broker)
    _, messages = _messages(broker, org)
    statuses = [m["status"] for m in messages if m["direction"] == "outbound"]
    assert statuses.count("sent") == 10 and statuses.count("blocked") == 1 and len(tiktok.sent()) == 10


def test_cron_endpoint_needs_the_secret_and_reports_the_queue(broker):
    with broker.client() as anonymous, broker.client("wrong") as wrong, broker.client(CRON_SECRET) as cron:
        assert anonymous.post("/api/jobs/process", json={"max_jobs": 1}).status_code == 401
        assert wrong.get("/api/jobs/process").status_code == 401
        status = cron.get("/api/jobs/process").json()
        assert cron.post("/api/jobs/process", json={"max_jobs": 0}).status_code == 422
    assert set(status["totals"]) >= {"pending", "processing", "completed", "failed"}
    assert "messaging.ai_response" in status["handlers"] and "messaging.send_whatsapp" in status["handlers"]


def test_a_reply_job_that_fails_after_its_ai_call_is_not_charged_twice(broker, graph, tiktok, clock, monkeypatch):
    from aibroker.messaging import conversations
    from aibroker.models import UsageRecord

    org = _setup(broker, graph, tiktok, "whatsapp")
    add_message = conversations.add_message
    failures = []

    def fails_once(*args, **kwargs):  # the worker dies between the AI call and the job's commit
        if kwargs.get("author") == "ai" and not failures:
            failures.append(1)
            raise RuntimeError("worker lost before commit")
        return add_message(*args, **kwargs)

    monkeypatch.setattr(conversations, "add_message", fails_once)
    assert _say(broker, "whatsapp", "hola, ¿precio?")["retried"] == 1
    clock[0] += 120  # past the backoff: the job runs again and asks the same question
    run_jobs(broker)
    [_, reply] = _messages(broker, org)[1]
    assert reply["status"] == "sent" and failures == [1]
    broker.flush()
    rows = [r for r in broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"]) if r.request_id == reply["request_id"]]
    assert [(r.cached, r.billed_cost_micros) for r in rows] == [(True, 0)]  # the retry's answer came from the cache, free
    paid = [r for r in broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"]) if r.billed_cost_micros > 0]
    assert len(paid) == 2  # one scoring call and one reply, each paid once

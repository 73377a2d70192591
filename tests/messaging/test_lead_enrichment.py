"""A new lead's name and picture from the Graph API's user profile (a queued job, best effort,
looked up once, never in the reply's way)."""

from __future__ import annotations

import pytest

from aibroker.models import Job, Lead
from tests.fakes.meta_graph import Reply
from tests.messaging.support import TOKENS, connect, fake_node, inbound, post_webhook, run_jobs

PSID = "7000000000000042"
PICTURE = "https://platform-lookaside.fbsbx.com/platform/profilepic/?psid=7000000000000042"


def _setup(broker, graph, channel):
    org = broker.create_org("Acme", credit="10", slug="acme")
    graph.tokens[fake_node(channel)] = TOKENS[channel]
    connect(broker, org["api_key"], channel)
    return org


def _message(broker, channel, text="hola", user=PSID):
    payload, _ = inbound(channel, text, user=user)
    with broker.client() as client:
        assert post_webhook(client, channel, "acme", payload).status_code == 200


def _later(broker, clock, seconds: float = 10) -> dict:
    """Run the jobs due now (the reply), then those due a little later (the lookup)."""
    first = run_jobs(broker)
    clock[0] += seconds
    second = run_jobs(broker)
    return {k: first.get(k, 0) + second.get(k, 0) for k in ("completed", "retried", "failed")}


@pytest.mark.parametrize("channel, profile, name", [
    ("facebook", {"first_name": "Ana", "last_name": "Pérez", "profile_pic": PICTURE, "locale": "es_LA"}, "Ana Pérez"),
    ("instagram", {"name": "Ana P.", "username": "ana.perez", "profile_pic": PICTURE}, "Ana P."),
])
def test_new_lead_gets_name_and_picture_once(broker, graph, tiktok, channel, profile, name, clock):
    org = _setup(broker, graph, channel)
    graph.profiles[PSID] = profile
    _message(broker, channel)
    assert run_jobs(broker) == {"completed": 3, "retried": 0, "failed": 0}  # the reply: sent first, without waiting
    assert graph.profile_lookups() == [] and len(graph.sent()) == 1
    clock[0] += 10
    assert run_jobs(broker) == {"completed": 1, "retried": 0, "failed": 0}
    with broker.client(org["api_key"]) as api:
        [lead] = api.get("/api/leads").json()["data"]
    assert (lead["name"], lead["profile_picture_url"]) == (name, PICTURE)
    [lookup] = graph.profile_lookups()
    assert lookup.path.endswith(f"/{PSID}") and lookup.query["access_token"] == TOKENS[channel]
    assert lookup.query["fields"] == ("first_name,last_name,profile_pic" if channel == "facebook" else "name,username,profile_pic")
    _message(broker, channel, "otra pregunta")  # the same lead again: not looked up again
    _later(broker, clock)
    assert len(graph.profile_lookups()) == 1
    assert graph.sent() and all(r.body["message"]["text"].startswith("Mock reply") for r in graph.sent())


def test_a_failing_profile_api_never_holds_the_reply(broker, graph, tiktok, clock):
    org = _setup(broker, graph, "facebook")
    graph.profiles[PSID] = Reply(500, {"error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 1}})
    _message(broker, "facebook")
    totals = _later(broker, clock)
    assert totals == {"completed": 3, "retried": 1, "failed": 0}  # the reply went out; the lookup waits its backoff
    assert len(graph.sent()) == 1
    [job] = broker.rows(Job, Job.type == "messaging.enrich_lead")
    assert job.status == "pending" and job.attempts == 1
    [lead] = broker.rows(Lead, Lead.organization_id == org["organization_id"])
    assert lead.name is None and lead.profile_fetched_at is None


def test_unknown_user_or_refused_token_is_final(broker, graph, tiktok, clock):
    org = _setup(broker, graph, "facebook")
    _message(broker, "facebook", user="7000000000000099")  # the fake has no such profile: 400 code 100
    assert _later(broker, clock) == {"completed": 4, "retried": 0, "failed": 0}
    [lead] = broker.rows(Lead, Lead.organization_id == org["organization_id"])
    assert lead.name is None and lead.profile_fetched_at is not None  # looked up once, not again


@pytest.mark.parametrize("channel", ["whatsapp", "tiktok"])
def test_channels_whose_webhook_names_the_lead_are_not_looked_up(broker, graph, tiktok, channel, clock):
    org = broker.create_org("Acme", credit="10", slug="acme")
    if channel == "tiktok":
        from tests.messaging.support import TT_BUSINESS

        tiktok.tokens[TT_BUSINESS] = TOKENS["tiktok"]
    else:
        graph.tokens[fake_node(channel)] = TOKENS[channel]
    connect(broker, org["api_key"], channel)
    _message(broker, channel, user=None)
    assert _later(broker, clock) == {"completed": 3, "retried": 0, "failed": 0}
    assert broker.rows(Job, Job.type == "messaging.enrich_lead") == []
    [lead] = broker.rows(Lead, Lead.organization_id == org["organization_id"])
    assert lead.name in ("Ana Pérez", "ana.perez")


def test_enrichment_can_be_turned_off(broker, graph, tiktok, clock):
    broker.services.settings.guard.enrich_leads = False
    _setup(broker, graph, "facebook")
    graph.profiles[PSID] = {"first_name": "Ana"}
    _message(broker, "facebook")
    assert _later(broker, clock) == {"completed": 3, "retried": 0, "failed": 0}
    assert graph.profile_lookups() == []

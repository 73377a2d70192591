"""End to end per channel: signed webhook -> lead -> conversation -> AI reply (mock provider,
through the gateway, charged to the wallet) -> sent to the fake platform API -> receipt webhook."""

from __future__ import annotations

import pytest

from aibroker.models import UsageRecord, Wallet
from tests.messaging.support import TOKENS, TT_BUSINESS, connect, fake_node, inbound, post_webhook, receipt, run_jobs

CHANNELS = ["whatsapp", "instagram", "facebook", "tiktok"]


def allow_sends(graph, tiktok, channel: str, suffix: str = "") -> None:
    if channel == "tiktok":
        tiktok.tokens[TT_BUSINESS + suffix] = TOKENS["tiktok"]
    else:
        graph.tokens[fake_node(channel, suffix)] = TOKENS[channel]


def sent_requests(graph, tiktok, channel):
    return tiktok.sent() if channel == "tiktok" else graph.sent()


@pytest.mark.parametrize("channel", CHANNELS)
def test_inbound_message_is_answered_charged_sent_and_delivered(broker, graph, tiktok, channel):
    org = broker.create_org("Acme", credit="10", slug="acme")
    allow_sends(graph, tiktok, channel)
    connect(broker, org["api_key"], channel)
    payload, external_id = inbound(channel, "Hola, quiero el precio, es urgente")
    with broker.client() as client:
        first = post_webhook(client, channel, "acme", payload)
        replay = post_webhook(client, channel, "acme", payload)
    assert first.status_code == 200 and first.json() == {"received": 1, "duplicates": 0, "ignored": 0}
    assert replay.status_code == 200 and replay.json() == {"received": 0, "duplicates": 1, "ignored": 0}
    assert broker.scalar("select count(*) from webhook_events") == 1

    totals = run_jobs(broker)
    assert totals == {"completed": 3, "retried": 0, "failed": 0}  # process_event, ai_response, send_<channel>

    with broker.client(org["api_key"]) as api:
        [lead] = api.get("/api/leads").json()["data"]
        detail = api.get(f"/api/leads/{lead['id']}").json()
        [conversation] = api.get("/api/conversations").json()["data"]
        messages = api.get(f"/api/conversations/{conversation['id']}/messages").json()["data"]
    assert lead["channel"] == channel
    if channel == "whatsapp":
        assert (lead["external_user_id"], lead["phone"], lead["name"]) == ("+5491155550000", "+5491155550000", "Ana Pérez")
    # interested (+10) and urgent (+15) from 50: HOT
    assert (lead["score"], lead["classification"]) == (75, "HOT")
    assert sorted((e["signal"], e["delta"]) for e in detail["score_events"]) == [("interested", 10), ("urgent", 15)]
    assert (conversation["status"], conversation["handled_by"], conversation["ai_messages_since_handoff"]) == ("active", "ai", 1)
    [incoming, reply] = messages
    assert (incoming["direction"], incoming["external_id"], incoming["content"]) == ("inbound", external_id, "Hola, quiero el precio, es urgente")
    assert (reply["direction"], reply["author"], reply["status"]) == ("outbound", "ai", "sent")
    assert reply["content"] == "Mock reply to: Hola, quiero el precio, es urgente"
    assert reply["external_id"] and reply["cost_micros"] > 0

    [sent] = sent_requests(graph, tiktok, channel)
    if channel == "whatsapp":
        assert sent.body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "5491155550000",
                             "type": "text", "text": {"preview_url": False, "body": reply["content"]}}
        assert sent.headers["authorization"] == "Bearer wa-token"
    elif channel == "tiktok":
        assert sent.body["recipient"] == "conv_123" and sent.body["text"] == {"body": reply["content"]}
        assert sent.headers["access-token"] == "tt-token"
    else:
        assert sent.body == {"recipient": {"id": "7000000000000001"}, "messaging_type": "RESPONSE", "message": {"text": reply["content"]}}
        assert sent.query["access_token"] == TOKENS[channel]

    # The wallet paid for both AI calls (classification + reply), each with its usage record.
    broker.flush()
    rows = broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    assert [r.feature for r in rows] == ["chat_reply", "chat_reply"] and all(r.status == "success" for r in rows)
    [wallet] = broker.rows(Wallet, Wallet.organization_id == org["organization_id"])
    assert wallet.balance_micros == 10_000_000 - sum(r.billed_cost_micros for r in rows) < 10_000_000

    status = "read" if channel in ("instagram", "tiktok") else "delivered"
    with broker.client() as client:
        assert post_webhook(client, channel, "acme", receipt(channel, reply["external_id"], status)).status_code == 200
    run_jobs(broker)
    with broker.client(org["api_key"]) as api:
        final = api.get(f"/api/conversations/{conversation['id']}/messages").json()["data"][1]
    assert final["status"] == status and final["delivered_at"] is not None


def test_status_only_moves_forward(broker, graph, tiktok):
    org = broker.create_org("Acme", credit="10", slug="acme")
    allow_sends(graph, tiktok, "whatsapp")
    connect(broker, org["api_key"], "whatsapp")
    payload, _ = inbound("whatsapp", "hola")
    with broker.client() as client:
        post_webhook(client, "whatsapp", "acme", payload)
        run_jobs(broker)
        wamid = broker.scalar("select external_id from messages where direction = 'outbound'")
        for status in ("read", "delivered", "sent", "failed"):  # late, out-of-order receipts
            assert post_webhook(client, "whatsapp", "acme", receipt("whatsapp", wamid, status)).status_code == 200
        run_jobs(broker)
    assert broker.scalar("select status from messages where direction = 'outbound'") == "read"


def test_shared_endpoint_routes_by_account_id(broker, graph, tiktok):
    """One Meta app, one callback URL: events reach the tenant that owns the phone number id."""
    acme = broker.create_org("Acme", credit="10", slug="acme")
    globex = broker.create_org("Globex", credit="10", slug="globex")
    allow_sends(graph, tiktok, "whatsapp")
    allow_sends(graph, tiktok, "whatsapp", "9")
    connect(broker, acme["api_key"], "whatsapp")
    connect(broker, globex["api_key"], "whatsapp", suffix="9")
    with broker.client() as client:
        response = post_webhook(client, "whatsapp", None, inbound("whatsapp", "hola", suffix="9")[0])
        unknown = post_webhook(client, "whatsapp", None, inbound("whatsapp", "hola", suffix="77")[0])
        # Acme's URL cannot carry Globex's events.
        cross = post_webhook(client, "whatsapp", "acme", inbound("whatsapp", "hola", suffix="9")[0])
    assert response.json() == {"received": 1, "duplicates": 0, "ignored": 0}
    assert unknown.status_code == 200 and unknown.json()["ignored"] == 1
    assert cross.json() == {"received": 0, "duplicates": 0, "ignored": 1}
    run_jobs(broker)
    with broker.client(globex["api_key"]) as api:
        assert len(api.get("/api/leads").json()["data"]) == 1
    with broker.client(acme["api_key"]) as api:
        assert api.get("/api/leads").json()["data"] == []



CONSENSUS_REPLIES = """
plans: [professional]
providers:
  - {slug: mock, display_name: Mock, default_model: mock-chat}
features:
  - {slug: chat_reply, name: Auto reply, category: chat, mode: consensus, consensus_strategy: majority}
feature_providers:
  - {feature: chat_reply, provider: mock, model: mock-vote-a, role: voting, weight: 1}
  - {feature: chat_reply, provider: mock, model: mock-vote-b, role: voting, weight: 1}
  - {feature: chat_reply, provider: mock, model: mock-vote-c, role: voting, weight: 3}
matrix:
  - {plan: professional, feature: chat_reply, providers: [{provider: mock, model: mock-vote-a}, {provider: mock, model: mock-vote-b}, {provider: mock, model: mock-vote-c}]}
"""


def test_a_consensus_chat_reply_feature_answers_by_vote(broker, graph, tiktok, tmp_path):
    from tests.routing.conftest import load_yaml

    load_yaml(broker, tmp_path, CONSENSUS_REPLIES)
    org = broker.create_org("Acme", credit="10", slug="acme", plan="professional")
    allow_sends(graph, tiktok, "whatsapp")
    connect(broker, org["api_key"], "whatsapp")
    with broker.client() as client:
        assert post_webhook(client, "whatsapp", "acme", inbound("whatsapp", "¿Les gustó?")[0]).status_code == 200
    assert run_jobs(broker)["completed"] == 3  # scoring needs JSON, which the voters lack: the reply goes unscored
    with broker.client(org["api_key"]) as api:
        [conversation] = api.get("/api/conversations").json()["data"]
        [_, reply] = api.get(f"/api/conversations/{conversation['id']}/messages").json()["data"]
    assert (reply["content"], reply["status"]) == ("Positive.", "sent")  # "Positive." and "positive" outvote "Negative!"
    broker.flush()
    votes = [r for r in broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
             if r.request_id == reply["request_id"]]
    assert sorted(r.model for r in votes) == ["mock/mock-vote-a", "mock/mock-vote-b", "mock/mock-vote-c"]
    assert reply["cost_micros"] == sum(r.billed_cost_micros for r in votes) > 0

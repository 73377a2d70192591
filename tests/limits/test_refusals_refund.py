"""A refused request uses no limit: a 402 (or any refusal after admission counted the
request) gives back every counter admission added, on the in-memory and Redis backends."""

from __future__ import annotations

CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 5}
HOURLY = 5


def _plan(broker, slug: str, **limits) -> None:
    with broker.admin() as admin:
        response = admin.post("/api/admin/plans", json={"slug": slug, "name": slug.upper(), **limits})
    assert response.status_code == 201, response.text


def test_402s_give_back_the_hourly_allowance(broker, backend):
    _plan(broker, "hourly", requests_per_hour=HOURLY, requests_per_minute=1000)
    org = broker.create_org("Empty", plan="hourly", credit=None)
    with broker.client(org["api_key"]) as client:
        refused = [client.post("/v1/chat/completions", json=CHAT) for _ in range(3 * HOURLY)]
        assert {r.status_code for r in refused} == {402}, [r.text for r in refused if r.status_code != 402]
        with broker.admin() as admin:
            topped = admin.post(f"/api/admin/wallets/{org['organization_id']}/topup", json={"amount_usd": "1"})
        assert topped.status_code == 200, topped.text
        served = [client.post("/v1/chat/completions", json=CHAT) for _ in range(HOURLY)]
        assert [r.status_code for r in served] == [200] * HOURLY, [r.text for r in served]
        # The allowance is exactly the plan's: the next one is refused by the limit itself.
        over = client.post("/v1/chat/completions", json=CHAT)
    assert over.status_code == 429 and over.json()["error"]["type"] == "rate_limit_exceeded"
    assert [r.headers["x-ratelimit-remaining-requests"] for r in served][-1] == "0"


def test_402_on_a_stream_gives_back_the_allowance(broker, backend):
    _plan(broker, "tiny", requests_per_minute=2)
    org = broker.create_org("EmptyStream", plan="tiny", credit=None)
    with broker.client(org["api_key"]) as client:
        for _ in range(4):
            assert client.post("/v1/chat/completions", json={**CHAT, "stream": True}).status_code == 402
        with broker.admin() as admin:
            assert admin.post(f"/api/admin/wallets/{org['organization_id']}/topup", json={"amount_usd": "1"}).status_code == 200
        assert [client.post("/v1/chat/completions", json=CHAT).status_code for _ in range(2)] == [200, 200]

"""The voice test call in the browser: Chromium's fake microphone streams to the voice
WebSocket through a session the console opened for the member (no API key on the page),
against the in-process mock realtime model; the transcript and the answer show, and after
hanging up the session's cost is what its usage records billed. Access and refusals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest
from playwright.sync_api import expect

from aibroker.models import UsageRecord, VoiceSession
from aibroker.voice.bridges.mock import TRANSCRIPT, USER_TRANSCRIPT
from tests.support.broker import BrokerServer
from tests.web.conftest import CHROMIUM, sign_in
from tests.web.support import Account, make_account, signed_in_client

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"]


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


@pytest.fixture(scope="module")
def browser(browser) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """This module's Chromium: launched by the session's Playwright like the shared one, plus a
    fake microphone that needs no permission prompt (launch arguments cannot be added later)."""
    launched = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=FAKE_MEDIA)
    try:
        yield launched
    finally:
        launched.close()


def test_a_voice_call_connects_and_gets_an_answer(page, console: BrokerServer, owner: Account) -> None:  # type: ignore[no-untyped-def]
    open_signed_in(page, owner, "/console/voice")
    assert "abk_" not in page.content()
    page.get_by_label("Model").select_option("mock/mock-realtime")
    with page.expect_response("**/console/api/voice/sessions") as opened:
        page.get_by_role("button", name="Start the call").click()
    body = opened.value.json()
    assert opened.value.status == 201 and set(body) == {"session_id", "ws_path", "expires_at", "model"}
    assert body["model"] == "mock/mock-realtime" and "token=vst_" in body["ws_path"]
    expect(page.locator("#voice-state")).to_have_text("connected")
    # The mock hears a turn in every second of audio: the fake microphone's frames make one.
    transcript = page.locator("#voice-transcript")
    expect(transcript.locator('[data-role="user"]').first).to_have_text(f"You: {USER_TRANSCRIPT}")
    expect(transcript.locator('[data-role="assistant"]').first).to_have_text(f"Assistant: {TRANSCRIPT}")
    assert "response.output_audio.delta" in page.locator("#voice-events").text_content()
    page.get_by_role("button", name="Hang up").click()
    summary = page.locator("#voice-summary")
    expect(summary).to_be_visible()
    expect(page.locator("#voice-state")).to_have_text("ended")
    session_id = body["session_id"]
    console.flush()
    rows = console.rows(UsageRecord, UsageRecord.request_id == session_id)
    [session] = console.rows(VoiceSession, VoiceSession.id == session_id)
    assert rows and {r.user_id for r in rows} == {owner.user_id} and {r.endpoint for r in rows} == {"voice"}
    assert session.user_id == owner.user_id and session.api_key_id is None and session.status == "closed"
    assert int(summary.get_attribute("data-cost-micros")) == sum(r.billed_cost_micros for r in rows) == session.cost_micros > 0
    assert session_id in summary.inner_text()
    assert fits_a_phone(page)


def test_access_other_organizations_roles_and_signed_out(console: BrokerServer, owner: Account) -> None:
    stranger = make_account(console, "OWNER")
    with console.client(stranger.api_key) as http:
        assert http.post("/api/voice/init/theirs", json={"model": "mock-realtime"}).status_code == 201
    member = make_account(console, "MEMBER", {"organization_id": owner.organization_id, "api_key": owner.api_key})
    client, token = signed_in_client(console, member)
    headers = {"x-csrf-token": token}
    with closing(client):
        assert client.get("/console/voice").status_code == 200  # any member may place a test call
        assert client.get("/console/api/voice/sessions/theirs").status_code == 404
        assert client.post("/console/api/voice/sessions", json={"model": "mock-realtime"}).status_code == 403  # no CSRF header
        bad = client.post("/console/api/voice/sessions", json={"model": "mock/mock-chat"}, headers=headers)
        assert bad.status_code == 400  # not a realtime model
        assert client.post("/console/api/voice/sessions", json={"input_audio_format": "g711"}, headers=headers).status_code == 400
        assert client.post("/console/api/voice/sessions", content=b"[]", headers=headers).status_code == 400
        mine = client.post("/console/api/voice/sessions", json={"model": "mock-realtime"}, headers=headers)
        assert mine.status_code == 201
    # Another member without VIEW_USAGE does not see it; the owner (VIEW_USAGE) does.
    other_member = make_account(console, "MEMBER", {"organization_id": owner.organization_id, "api_key": owner.api_key})
    client, _ = signed_in_client(console, other_member)
    with closing(client):
        assert client.get(f"/console/api/voice/sessions/{mine.json()['session_id']}").status_code == 404
    client, _ = signed_in_client(console, owner)
    with closing(client):
        assert client.get(f"/console/api/voice/sessions/{mine.json()['session_id']}").json()["status"] == "pending"
    with console.client(follow_redirects=False) as anonymous:
        answer = anonymous.get("/console/voice")
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login?next=%2Fconsole%2Fvoice"
        assert anonymous.post("/console/api/voice/sessions", json={}).status_code == 401


def test_a_suspended_organization_cannot_spend_through_the_ai_pages(console: BrokerServer) -> None:
    """As the API refuses a suspended organization's keys and users, so do the console's AI endpoints."""
    owner = make_account(console, "OWNER")
    client, token = signed_in_client(console, owner)
    with console.admin() as admin:
        assert admin.patch(f"/api/admin/organizations/{owner.organization_id}", json={"status": "suspended"}).status_code == 200
    headers = {"x-csrf-token": token}
    with closing(client):
        for path in ("/console/api/voice/sessions", "/console/api/playground/conversations", "/console/api/recordings"):
            refused = client.post(path, json={}, headers=headers)
            assert refused.status_code == 403 and "suspended" in refused.json()["error"]["message"], path

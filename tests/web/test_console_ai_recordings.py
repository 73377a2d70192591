"""The recordings pages in the browser: a chunked upload with its progress bar, the list's
status following the processing without a reload up to `analyzed` (the audio job run as
tests/recordings run it: POST /api/jobs/process), then the transcript and analysis, whose
cost is what the usage records billed. Access: another organization's recordings 404, a
weaker role 403, signed out -> sign-in."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import closing

import pytest
from playwright.sync_api import expect

from aibroker.models import Recording, UsageRecord
from tests.fakes.openai_upstream import FakeOpenAI
from tests.recordings.samples import encode
from tests.support.broker import BrokerServer
from tests.web.conftest import sign_in
from tests.web.support import Account, make_account, signed_in_client

CHUNK = 16 * 1024  # a 5-second MP3 goes up in several chunks


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
def console(console_database: str, fake_openai: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerServer]:
    """The shared console server, with recordings transcribed by the mock in 2-second segments."""
    env = {
        "AIBROKER_DATABASE_URL": console_database, "AIBROKER_STORAGE_DIR": str(tmp_path_factory.mktemp("storage")),
        "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.base_url, "AIBROKER_ADMIN_TOKEN": "test-admin-token",
        "AIBROKER_MOCK_LATENCY_MS": "5", "AIBROKER_MAX_CHUNK_BYTES": str(CHUNK), "AIBROKER_RECORDINGS_SEGMENT_SECONDS": "2",
        "AIBROKER_RECORDINGS_TRANSCRIPTION_MODEL": "mock/mock-transcribe", "AIBROKER_RECORDINGS_ANALYSIS_MODEL": "mock/mock-chat",
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


@pytest.fixture
def owner(console: BrokerServer) -> Account:
    """An OWNER of a PROFESSIONAL organization (processing is four AI calls; FREE allows ten an hour)."""
    return make_account(console, "OWNER", _professional(console, "Recorder"))


def _professional(console: BrokerServer, name: str) -> dict:
    return console.create_org(f"{name} {uuid.uuid4().hex[:6]}", credit="10", plan="professional")


def _process(console: BrokerServer) -> dict:
    with console.admin() as admin:
        answer = admin.post("/api/jobs/process", json={"max_jobs": 5, "concurrency": 1})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_upload_with_progress_then_the_status_reaches_analyzed(page, console: BrokerServer, owner: Account, tmp_path) -> None:  # type: ignore[no-untyped-def]
    audio = tmp_path / "call.mp3"
    data = encode("mp3", 5)
    audio.write_bytes(data)
    open_signed_in(page, owner, "/console/recordings")
    page.get_by_label("Audio file").set_input_files(str(audio))
    page.get_by_label("Title (optional)").fill("Sales call")
    chunks = []
    page.on("request", lambda r: chunks.append(r.url) if "/chunks/" in r.url else None)
    page.get_by_role("button", name="Upload").click()
    row = page.locator("#recordings-body tr", has_text="Sales call")
    expect(row.locator('[data-field="status"]')).to_have_text(re.compile(r"^uploaded"))
    assert len(chunks) == -(-len(data) // CHUNK) > 1  # chunked, as the page's data-chunk-bytes says
    progress = page.get_by_role("progressbar", name="Upload progress")
    assert progress.get_attribute("value") == "100" and page.locator("#upload-progress-text").inner_text() == "100%"
    recording_id = row.get_attribute("data-id")

    assert _process(console)["completed"] == 1
    # The list follows the status without a reload (the page polls), announced in its live region.
    expect(row.locator('[data-field="status"]')).to_have_text("analyzed", timeout=15_000)
    expect(page.locator("#recordings-live")).to_have_text("Sales call is analyzed.")
    console.flush()
    records = console.rows(UsageRecord, UsageRecord.organization_id == owner.organization_id)
    billed = sum(r.billed_cost_micros for r in records if r.feature in ("recording_transcription", "recording_analysis"))
    assert billed > 0 and int(row.locator('[data-field="cost"]').get_attribute("data-cost-micros")) == billed

    row.get_by_role("link", name="Sales call").click()
    page.wait_for_url(f"**/console/recordings/{recording_id}")
    assert page.locator("#recording-status").inner_text() == "analyzed"
    assert page.locator("#analysis-summary").inner_text().startswith("Mock summary")
    assert page.locator("#transcript li").count() == 3  # 5 s in 2-second segments
    assert "Mock second 1." in page.locator("#transcript").inner_text()
    [stored] = console.rows(Recording, Recording.id == recording_id)
    assert (stored.user_id, stored.status, stored.cost_micros) == (owner.user_id, "analyzed", billed)
    assert fits_a_phone(page)
    page.goto("/console/recordings")
    assert fits_a_phone(page)


def test_a_recordings_page_follows_its_processing(page, console: BrokerServer, owner: Account) -> None:  # type: ignore[no-untyped-def]
    """A recording uploaded elsewhere (the API): its page shows the analysis once processed, without a reload by hand."""
    with console.client(owner.api_key) as http:
        made = http.post("/api/upload", files={"file": ("memo.wav", encode("wav", 3), "audio/wav")}, data={"title": "Memo"})
    assert made.status_code == 201, made.text
    open_signed_in(page, owner, f"/console/recordings/{made.json()['id']}")
    assert page.locator("#analysis-pending").is_visible()
    _process(console)
    expect(page.locator("#analysis-summary")).to_contain_text("Mock summary", timeout=15_000)


def test_access_other_organizations_roles_and_signed_out(console: BrokerServer, owner: Account) -> None:
    stranger = make_account(console, "OWNER", _professional(console, "Other"))
    with console.client(stranger.api_key) as http:
        theirs = http.post("/api/upload", files={"file": ("x.wav", encode("wav", 1), "audio/wav")}).json()["id"]
    with console.client(owner.api_key) as http:
        mine = http.post("/api/upload", files={"file": ("y.wav", encode("wav", 1), "audio/wav")}).json()["id"]
    client, token = signed_in_client(console, owner)
    headers = {"x-csrf-token": token}
    with closing(client):
        for path in (f"/console/recordings/{theirs}", f"/console/recordings/{theirs}/audio"):
            assert client.get(path).status_code == 404
        assert client.post(f"/console/api/recordings/{theirs}/chunks/0", content=b"x", headers=headers).status_code == 404
        assert client.post(f"/console/api/recordings/{theirs}/finalize", headers=headers).status_code == 404
        assert client.post(f"/console/recordings/{theirs}/delete", data={"csrf_token": token}).status_code == 404
        listed = client.get(f"/console/api/recordings/statuses?ids={theirs},{mine}").json()["data"]
        assert [r["id"] for r in listed] == [mine]  # another organization's id is left out
        assert theirs not in client.get("/console/recordings").text
        # Bad input: a clear 4xx, and no CSRF header: 403.
        assert client.post("/console/api/recordings", json={"total_bytes": -1}, headers=headers).status_code == 400
        assert client.post("/console/api/recordings", json={}).status_code == 403
        assert client.get(f"/console/recordings/{mine}/audio", headers={"range": "bytes=0-3"}).status_code == 206
    member = make_account(console, "MEMBER", {"organization_id": owner.organization_id, "api_key": owner.api_key})
    client, token = signed_in_client(console, member)
    with closing(client):
        assert client.get(f"/console/recordings/{mine}").status_code == 200  # members read and upload recordings ...
        made = client.post("/console/api/recordings", json={"total_bytes": 10, "total_chunks": 1}, headers={"x-csrf-token": token})
        assert made.status_code == 201  # (so the member's CSRF token is good: the 403 below is the role's)
        refused = client.post(f"/console/recordings/{mine}/delete", data={"csrf_token": token})
        assert refused.status_code == 403  # ... but delete only their own (an OWNER / ADMIN deletes any)
    assert console.rows(Recording, Recording.id == mine)
    with console.client(follow_redirects=False) as anonymous:
        for path in ("/console/recordings", f"/console/recordings/{mine}"):
            answer = anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login?next=")
        assert anonymous.get(f"/console/api/recordings/statuses?ids={mine}").status_code == 401
        assert anonymous.post("/console/api/recordings", json={}).status_code == 401

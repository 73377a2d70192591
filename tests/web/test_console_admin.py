"""The platform pages in a real browser, as a SUPER_ADMIN: a routing row changed and the dry run
following it, a wallet adjustment in the balance with the ledger still verifying, a dead job
retried, a catalog price edited, and provider health and revenue after some traffic."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import insert, select

from aibroker.billing.audit_checkpoint import verify_ledger
from aibroker.db import make_sync_engine
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Job
from tests.web.conftest import sign_in
from tests.web.support import make_account, make_org

ROUTING = "/api/admin/routing"


@pytest.fixture(scope="module")
def admin(console):
    return make_account(console, "OWNER", super_admin=True)


def seed_routing(console, feature: str) -> dict:
    """A provider, a feature and one matrix row free / feature / default -> mock/mock-chat (admin API)."""
    with console.admin() as api:
        api.put(f"{ROUTING}/vocabulary", json={"plans": ["free", "professional"], "profiles": ["usuaria"]}).raise_for_status()
        if not any(p["slug"] == "mock" for p in api.get(f"{ROUTING}/providers").json()["data"]):
            api.post(f"{ROUTING}/providers", json={"slug": "mock", "default_model": "mock-chat"}).raise_for_status()
        api.post(f"{ROUTING}/features", json={"slug": feature, "name": feature}).raise_for_status()
        row = api.post(f"{ROUTING}/matrix", json={"plan": "free", "feature": feature, "provider": "mock", "model": "mock-chat"})
        row.raise_for_status()
        return row.json()


def refusal_expected(page, status: int, path: str) -> None:  # type: ignore[no-untyped-def]
    """The form's POST answers `status` on purpose: the browser reports it as a failed load."""
    page.problems.allow(rf"HTTP {status}: POST .*{re.escape(path)}")
    page.problems.allow(rf"Failed to load resource: the server responded with a status of {status}")


def dry_run(page, feature: str, plan: str = "free") -> None:  # type: ignore[no-untyped-def]
    form = page.get_by_test_id("dry-run-form")
    form.get_by_label("Feature").select_option(feature)
    form.get_by_label("Plan").select_option(plan)
    form.get_by_role("button", name="Resolve").click()


def test_a_routing_row_change_shows_in_the_dry_run(page, console, admin):
    feature = f"resumo-{uuid.uuid4().hex[:6]}"
    seed_routing(console, feature)
    sign_in(page, admin)
    page.goto("/console/admin/routing")
    dry_run(page, feature)
    expect(page.get_by_test_id("dry-run-primary")).to_have_text("mock/mock-chat")

    page.get_by_role("link", name=f"Edit free / {feature} / default → mock/mock-chat").click()
    page.get_by_label("Model").fill("mock/mock-text")
    page.get_by_label("Requests per day").fill("7")
    page.get_by_role("button", name="Save row").click()
    expect(page.get_by_role("status")).to_contain_text(f"Saved the row free / {feature} / default")

    org = make_org(console, "Routed", credit="5")  # on the free plan: one request of the feature, served by the new row
    with console.client(org["api_key"]) as tenant:
        served = tenant.post("/v1/chat/completions", headers={"x-aibroker-feature": feature},
                             json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert served.status_code == 200 and served.json()["model"].endswith("mock-text"), served.text
    console.flush()
    page.get_by_label("Organization id or slug").fill(org["slug"])
    dry_run(page, feature)
    expect(page.get_by_test_id("dry-run-primary")).to_have_text("mock/mock-text")
    expect(page.get_by_test_id("dry-run-result")).to_contain_text("7/day")
    expect(page.get_by_test_id("dry-run-usage")).to_contain_text("1 today")
    with console.admin() as api:  # the JSON API's own dry run agrees
        answer = api.post(f"{ROUTING}/resolve", json={"plan": "free", "feature": feature}).json()
    assert answer["candidates"][0]["model"] == "mock/mock-text" and answer["candidates"][0]["daily_limit"] == 7


def test_a_bad_routing_value_is_refused_with_a_message(page, console, admin):
    feature = f"juridico-{uuid.uuid4().hex[:6]}"
    row = seed_routing(console, feature)
    sign_in(page, admin)
    page.goto(f"/console/admin/routing/matrix/{row['id']}")
    refusal_expected(page, 400, "/console/admin/routing/matrix/")
    page.get_by_label("Model").fill("mock/no-such-model")
    page.get_by_role("button", name="Save row").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("mock/no-such-model")
    page.goto("/console/admin/routing")
    dry_run(page, feature)
    expect(page.get_by_test_id("dry-run-primary")).to_have_text("mock/mock-chat")  # nothing changed


def test_a_wallet_adjustment_shows_in_the_balance_and_the_ledger_verifies(page, console, admin):
    org = make_org(console, "Tenant", credit="10")
    sign_in(page, admin)
    page.goto("/console/admin/organizations")
    page.get_by_label("Search by name, slug or id").fill(org["slug"])
    page.get_by_role("button", name="Search").click()
    page.get_by_test_id("organizations").get_by_role("link").first.click()
    expect(page.get_by_test_id("org-balance")).to_have_text("$10.00")

    page.get_by_label("Amount in USD").fill("12.345678")
    page.get_by_label("Reason").fill("goodwill credit for an outage")
    page.get_by_role("button", name="Post adjustment").click()
    expect(page.get_by_role("status")).to_contain_text("Adjustment applied")
    expect(page.get_by_test_id("org-balance")).to_have_text("$22.345678")
    expect(page.get_by_test_id("ledger")).to_contain_text("goodwill credit for an outage")

    refusal_expected(page, 409, "/adjustment")  # an overdraft is refused, with the reason shown
    page.get_by_label("Amount in USD").fill("-100")
    page.get_by_label("Reason").fill("too much")
    page.get_by_role("button", name="Post adjustment").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("below zero")
    expect(page.get_by_test_id("org-balance")).to_have_text("$22.345678")

    with console.client(org["api_key"]) as tenant:  # the organization sees it too
        assert tenant.get("/api/wallet").json()["balance_micros"] == 22_345_678
    console.flush()
    engine = make_sync_engine(console.database_url, pooled=False)
    try:
        report = verify_ledger(engine, full=True)
    finally:
        engine.dispose()
    assert report.ok, report.as_dict()


def test_suspending_an_organization_refuses_its_key_and_the_margin_is_saved(page, console, admin):
    org = make_org(console, "Suspended", credit="1")
    sign_in(page, admin)
    page.goto(f"/console/admin/organizations/{org['organization_id']}")
    page.get_by_label("Status", exact=True).select_option("suspended")
    page.get_by_role("button", name="Save plan and status").click()
    expect(page.get_by_test_id("org-status")).to_have_text("suspended")
    with console.client(org["api_key"]) as tenant:
        assert tenant.get("/api/wallet").status_code == 403
    page.get_by_label("Plan", exact=True).select_option("starter")
    page.get_by_label("Status", exact=True).select_option("active")
    page.get_by_role("button", name="Save plan and status").click()
    expect(page.get_by_test_id("org-status")).to_have_text("active")
    expect(page.get_by_test_id("org-plan")).to_have_text("starter")
    with console.client(org["api_key"]) as tenant:
        assert tenant.get("/api/wallet").status_code == 200

    page.get_by_label("Margin over provider cost").fill("4500")
    page.get_by_role("button", name="Save margin").click()
    expect(page.get_by_test_id("org-margin")).to_have_text("4500 bps")
    with console.admin() as api:
        assert next(o for o in api.get("/api/admin/organizations").json()["data"] if o["id"] == org["organization_id"])["plan"] == "starter"
    page.get_by_role("link", name="All organizations").click()
    expect(page.get_by_test_id("plans").locator("tr", has_text="STARTER")).to_contain_text("$29.00")


def _dead_job(console) -> str:
    job_id = new_id("job")
    now = utcnow()
    with console.db.begin() as conn:
        conn.execute(insert(Job.__table__).values(
            id=job_id, type="messaging.send_whatsapp", payload={"to": "+5511999999999"}, status="failed", priority=0,
            attempts=5, max_attempts=5, scheduled_for=now, completed_at=now, error="upstream said 503", created_at=now, updated_at=now,
        ))
    return job_id


def test_a_dead_job_is_retried(page, console, admin):
    job_id = _dead_job(console)
    sign_in(page, admin)
    page.goto("/console/admin/jobs")
    row = page.locator(f"tr[data-job='{job_id}']")
    expect(row).to_contain_text("upstream said 503")
    row.get_by_role("button", name=f"Retry job {job_id}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Job {job_id} (messaging.send_whatsapp) is queued again")
    expect(page.locator(f"tr[data-job='{job_id}']")).to_have_count(0)  # no longer a dead letter
    assert _job(console, job_id) == ("pending", 0)
    page.get_by_label("Status", exact=True).select_option("pending")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(f"tr[data-job='{job_id}'] [data-testid=job-status]")).to_have_text("pending")


def _job(console, job_id: str) -> tuple[str, int]:
    with console.db.connect() as conn:
        status, attempts = conn.execute(select(Job.status, Job.attempts).where(Job.id == job_id)).one()
    return status, attempts


def test_a_catalog_price_is_edited_and_reset(page, console, admin):
    sign_in(page, admin)
    page.goto("/console/admin/catalog?q=mock-vote-a")
    page.get_by_role("link", name="mock/mock-vote-a").click()
    page.get_by_label("Input").first.fill("3.5")
    page.get_by_role("button", name="Save price").click()
    expect(page.get_by_role("status")).to_contain_text("Saved the price of mock/mock-vote-a")
    expect(page.get_by_test_id("price-source")).to_have_text("override")
    assert console.services.catalog.get("mock/mock-vote-a").input_micros_per_m == 3_500_000  # priced by it now
    page.get_by_role("button", name="Back to the catalog price").click()
    expect(page.get_by_test_id("price-source")).to_have_text("packaged")
    assert console.services.catalog.get("mock/mock-vote-a").input_micros_per_m == 1_000_000


def org_name(console, org: dict) -> str:
    with console.admin() as api:
        return next(o["name"] for o in api.get("/api/admin/organizations").json()["data"] if o["id"] == org["organization_id"])


def _chat(console, key: str, model: str) -> int:
    with console.client(key) as client:
        return client.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]}).status_code


def test_provider_health_and_revenue_after_traffic(page, console, admin):
    org = make_org(console, "Traffic", credit="10")
    assert _chat(console, org["api_key"], "mock/mock-chat") == 200
    assert _chat(console, org["api_key"], "mock/mock-down") >= 500
    console.flush()
    sign_in(page, admin)
    page.goto("/console/admin/providers")
    mock = page.locator("tr[data-provider='mock']")
    breaker = console.services.pool.breakers["mock"].state
    expect(mock).to_contain_text(breaker.replace("_", "-"))
    requests = int(mock.locator("td").nth(3).inner_text().replace(",", ""))
    assert requests >= 2
    assert mock.locator("td").nth(4).inner_text() != "0.0%"  # the failed call counts

    page.goto("/console/admin/revenue")
    expect(page.get_by_test_id("by-organization")).to_contain_text(org_name(console, org))
    assert page.get_by_test_id("total-revenue").inner_text() != "$0.00"
    expect(page.locator("figure.chart")).to_have_count(5)
    expect(page.get_by_test_id("by-provider")).to_contain_text("mock")
    page.set_viewport_size({"width": 390, "height": 800})  # phone width: still usable
    expect(page.get_by_role("button", name="Show")).to_be_visible()
    assert re.search(r"\$\d", page.get_by_test_id("total-margin").inner_text())

"""The console's test harness: one live server per module (SQLite, and PostgreSQL when
configured), one headless Chromium per test session (the distribution's, never a downloaded
one), and a `page` fixture that fails its test on any console error or failed request and
saves a screenshot under test-artifacts/console/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DATABASES, _truncate_pg
from tests.fakes.mercadopago_api import FakeMercadoPago
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.stripe_api import FakeStripe
from tests.support.accounts import MP_WEBHOOK_SECRET, WEBHOOK_SECRET
from tests.support.broker import BrokerServer
from tests.web.support import Account, make_account

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


@pytest.fixture(scope="module", params=DATABASES)
def console_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> str:
    """A migrated, empty database for this module's server."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("console") / "aibroker.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url = request.getfixturevalue("pg_migrated")
    _truncate_pg(url)
    return url


@pytest.fixture(scope="session")
def console_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture(scope="session")
def console_mp() -> Iterator[FakeMercadoPago]:
    with FakeMercadoPago() as fake:
        yield fake


@pytest.fixture(scope="module")
def console(console_database: str, fake_openai: FakeOpenAI, console_stripe: FakeStripe, console_mp: FakeMercadoPago,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerServer]:
    """A broker serving the console over real HTTP, for every test of the module (the fake
    OpenAI, Stripe and Mercado Pago behind it)."""
    env = {
        "STRIPE_API_KEY": console_stripe.api_key, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_API_BASE": console_stripe.base_url,
        "MERCADOPAGO_ACCESS_TOKEN": console_mp.access_token, "MERCADOPAGO_WEBHOOK_SECRET": MP_WEBHOOK_SECRET,
        "MERCADOPAGO_API_BASE": console_mp.base_url,
        "AIBROKER_DATABASE_URL": console_database,
        "AIBROKER_STORAGE_DIR": str(tmp_path_factory.mktemp("storage")),
        "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.base_url,
        "AIBROKER_ADMIN_TOKEN": "test-admin-token",
        "AIBROKER_RETRY_BASE_SECONDS": "0.01", "AIBROKER_RETRY_MAX_SECONDS": "0.05",
        "AIBROKER_MOCK_LATENCY_MS": "5",
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


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


class Problems(list):
    """Console errors and failed requests seen by a page; `allow(pattern)` tolerates an expected one."""

    def __init__(self) -> None:
        super().__init__()
        self.allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [p for p in self if not any(a.search(p) for a in self.allowed)]


def _navigated_away(request) -> bool:  # type: ignore[no-untyped-def]
    # The browser drops the favicon's load when the test moves on to the next page: not a failure.
    return request.url.endswith("/favicon.svg") and request.failure == "net::ERR_ABORTED"


@pytest.fixture
def page(browser, console: BrokerServer, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh browser context on the live server. Fails the test on any console error, page
    error or failed request (HTTP >= 400 included); `page.problems.allow(regex)` tolerates one."""
    context = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems = Problems()
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: None if _navigated_away(req) else problems.append(f"request failed: {req.method} {req.url} {req.failure}"))
    page.on("response", lambda resp: problems.append(f"HTTP {resp.status}: {resp.request.method} {resp.url}") if resp.status >= 400 else None)
    page.problems = problems  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        finally:
            context.close()
    assert problems.unexpected() == [], "the page had console errors or failed requests"


def sign_in(page, account: Account) -> None:  # type: ignore[no-untyped-def]
    """Sign in through the form, as a person would, and wait for the overview (or the page asked for)."""
    page.goto("/console/login")
    page.get_by_label("E-mail").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/(?!login)"))


@pytest.fixture
def owner(console: BrokerServer) -> Account:
    """An OWNER of a new organization ($10 credit)."""
    return make_account(console, "OWNER")

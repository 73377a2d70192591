"""Fake Stripe and Mercado Pago servers, and a broker configured to use them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.mercadopago_api import FakeMercadoPago
from tests.fakes.stripe_api import FakeStripe
from tests.support.accounts import MP_WEBHOOK_SECRET, WEBHOOK_SECRET


@pytest.fixture(scope="session")
def _stripe_server() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture(scope="session")
def _mp_server() -> Iterator[FakeMercadoPago]:
    with FakeMercadoPago() as fake:
        yield fake


@pytest.fixture
def fake_stripe(_stripe_server: FakeStripe) -> Iterator[FakeStripe]:
    _stripe_server.reset()
    yield _stripe_server


@pytest.fixture
def fake_mp(_mp_server: FakeMercadoPago) -> Iterator[FakeMercadoPago]:
    _mp_server.reset()
    yield _mp_server


@pytest.fixture
def broker_env(broker_env: dict[str, str], fake_stripe: FakeStripe, fake_mp: FakeMercadoPago) -> dict[str, str]:
    return {
        **broker_env,
        "STRIPE_API_KEY": fake_stripe.api_key,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake_stripe.base_url,
        "MERCADOPAGO_ACCESS_TOKEN": fake_mp.access_token,
        "MERCADOPAGO_WEBHOOK_SECRET": MP_WEBHOOK_SECRET,
        "MERCADOPAGO_API_BASE": fake_mp.base_url,
    }

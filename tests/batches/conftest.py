"""An organization with credit and an OpenAI SDK client for it, on the shared test broker."""

from __future__ import annotations

import openai
import pytest


@pytest.fixture
def org(broker):
    return broker.create_org("Acme", credit="10")


@pytest.fixture
def client(broker, org):
    return openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)

"""`aibroker secrets rotate` re-seals the new sealed columns too: API keys' signing secrets
and the platform's provider keys."""

from __future__ import annotations

from aibroker.billing.platform_keys import seal_context
from aibroker.kit import crypto
from aibroker.models import ApiKey, PlatformProviderKey
from aibroker.tenancy.secrets import rotate, sealers

NEW = "new-secret-key-for-rotation"


def test_rotation_reseals_signing_secrets_and_platform_keys(broker):
    org = broker.create_org("Acme")
    old = broker.settings.server.secret_key
    with broker.client(org["api_key"]) as tenant:
        made = tenant.post("/api/keys", json={"signing": True}).json()
    with broker.admin() as admin:
        assert admin.post("/api/admin/provider-keys", json={"provider": "anthropic", "api_key": "sk-ant-stored-7"}).status_code == 201
    assert {"api_key_signing_secrets", "platform_provider_keys"} <= {s.name for s in sealers()}
    report = rotate(broker.db, old_secret=old, new_secret=NEW)
    assert report.resealed["api_key_signing_secrets"] == 1 and report.resealed["platform_provider_keys"] == 1
    [key] = broker.rows(ApiKey, ApiKey.id == made["id"])
    assert key.signing_key_id == crypto.key_id(NEW)
    assert crypto.unseal(bytes(key.sealed_signing_secret), NEW, context=f"signing:{key.id}") == made["signing_secret"]
    [stored] = broker.rows(PlatformProviderKey)
    assert crypto.unseal(bytes(stored.sealed_key), NEW, context=seal_context("anthropic")) == "sk-ant-stored-7"
    assert rotate(broker.db, old_secret=old, new_secret=NEW).resealed["api_key_signing_secrets"] == 0

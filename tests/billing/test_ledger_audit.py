"""`aibroker verify-ledger` after a mixed workload (passes), after direct corruption
(fails, listing each disagreement), and the CLI's idempotent top-up and hold sweep."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import text

from aibroker.billing.audit import verify
from aibroker.db import make_sync_engine
from aibroker.models import LedgerEntry, UsageRecord, WalletHold
from tests.billing.conftest import cli_json, run_cli, wallet_row
from tests.fakes.openai_upstream import Fault


def _mixed_workload(broker, org, upstream) -> None:
    chat = {"model": "mock-chat", "messages": [{"role": "user", "content": "a mixed workload"}]}
    with broker.client(org["api_key"]) as tenant, broker.admin() as admin:
        for _ in range(3):
            assert tenant.post("/v1/chat/completions", json=chat).status_code == 200
        assert tenant.post("/v1/chat/completions", json={**chat, "stream": True}).status_code == 200
        assert tenant.post("/v1/embeddings", json={"model": "mock-embed", "input": ["a", "b c"]}).status_code == 200
        assert tenant.post("/v1/chat/completions", json={**chat, "model": "openai/gpt-4o-mini"}).status_code == 200
        upstream.script([Fault(status=500)] * 10)
        assert tenant.post("/v1/chat/completions", json={**chat, "model": "openai/gpt-4o-mini"}).status_code >= 500
        upstream.reset()
        assert tenant.post("/v1/chat/completions", json={**chat, "model": "mock-down"}).status_code >= 500
        assert tenant.post("/v1/chat/completions", json={**chat, "model": "openai/gpt-4o", "max_tokens": 16000}).status_code in (200, 402)
        admin.post(f"/api/admin/wallets/{org['slug']}/topup", json={"amount_usd": "3", "idempotency_key": "a"})
        admin.post(f"/api/admin/wallets/{org['slug']}/refund", json={"amount_usd": "0.5"})
        admin.post(f"/api/admin/wallets/{org['slug']}/adjustment", json={"amount_usd": "-0.25", "description": "fix"})
    broker.flush()


def test_verify_ledger_passes_after_a_mixed_workload_and_fails_after_corruption(broker, org, upstream, database_url):
    other = broker.create_org("Other", credit="2")
    _mixed_workload(broker, org, upstream)
    _mixed_workload(broker, other, upstream)
    ok = run_cli(database_url, "verify-ledger")
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 2 wallet(s)")
    assert cli_json(database_url, "verify-ledger", "--json")["ok"] is True

    with broker.db.begin() as conn:
        conn.execute(text("UPDATE wallets SET balance_micros = balance_micros + 5 WHERE organization_id = :o"), {"o": org["organization_id"]})
    bad = run_cli(database_url, "verify-ledger", check=False)
    assert bad.returncode == 1
    assert "balance" in bad.stdout and org["organization_id"] in bad.stdout and "1 problem(s)" in bad.stdout
    report = json.loads(run_cli(database_url, "verify-ledger", "--json", check=False).stdout)
    assert report["ok"] is False
    [problem] = report["problems"]
    assert (problem["check"], problem["actual"] - problem["expected"]) == ("balance", 5)


@pytest.mark.parametrize(
    "corruption, expected_checks",
    [
        ("UPDATE wallets SET held_micros = held_micros + 7", {"held"}),
        ("UPDATE ledger_entries SET amount_micros = amount_micros - 1 WHERE id = (SELECT MIN(id) FROM ledger_entries WHERE kind = 'debit')",
         {"balance", "chain", "debit_amount"}),
        ("DELETE FROM ledger_entries WHERE id = (SELECT MAX(id) FROM ledger_entries WHERE kind = 'debit')",
         {"balance", "chain", "usage_without_debit"}),  # later entries no longer follow on
        ("DELETE FROM usage_records WHERE id = (SELECT usage_record_id FROM ledger_entries WHERE kind = 'debit' ORDER BY id LIMIT 1)",
         {"debit_without_usage"}),
        ("UPDATE usage_records SET billed_cost_micros = billed_cost_micros + 1 WHERE id = (SELECT usage_record_id FROM ledger_entries WHERE kind = 'debit' ORDER BY id LIMIT 1)",
         {"debit_amount"}),
        ("UPDATE ledger_entries SET balance_after_micros = balance_after_micros + 3 WHERE id = (SELECT MIN(id) FROM ledger_entries WHERE kind = 'refund')",
         {"chain"}),
    ],
)
def test_each_kind_of_disagreement_is_found(broker, org, upstream, corruption, expected_checks):
    _mixed_workload(broker, org, upstream)
    engine = make_sync_engine(broker.database_url, pooled=False)
    try:
        assert verify(engine).ok
        with engine.begin() as conn:
            conn.execute(text(corruption))
        report = verify(engine)
    finally:
        engine.dispose()
    assert not report.ok
    assert {p.check for p in report.problems} == expected_checks


def test_cli_topup_is_idempotent_and_agrees_with_http(broker, org, database_url):
    first = cli_json(database_url, "wallet", "topup", org["slug"], "1.25", "--idempotency-key", "cli-1", "--json")
    again = cli_json(database_url, "wallet", "topup", org["slug"], "1.25", "--idempotency-key", "cli-1", "--json")
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert first["balance_micros"] == again["balance_micros"] == 11_250_000
    with broker.admin() as admin:  # the same key over HTTP is the same operation: it moves nothing
        via_http = admin.post(f"/api/admin/wallets/{org['slug']}/topup", json={"amount_usd": "1.25", "idempotency_key": "cli-1"})
    assert via_http.json()["duplicate"] is True
    shown = cli_json(database_url, "wallet", "show", org["organization_id"], "--json")
    assert (shown["balance_micros"], shown["available"], shown["held_micros"]) == (11_250_000, "11.250000", 0)
    assert len(broker.rows(LedgerEntry, LedgerEntry.idempotency_key == "cli-1")) == 1


def test_holds_sweep_cli_releases_expired_holds_exactly(broker, org, database_url):
    wallet = wallet_row(broker, org["organization_id"])
    now = dt.datetime.now(dt.UTC)
    with broker.db.begin() as conn:  # what a crashed process leaves behind: holds nobody will settle
        conn.execute(
            WalletHold.__table__.insert(),
            [{"id": f"hold_dead{i}", "wallet_id": wallet.id, "request_id": f"req_dead{i}", "amount_micros": 100 + i,
              "expires_at": now + dt.timedelta(seconds=900), "created_at": now} for i in range(3)],
        )
        conn.execute(text("UPDATE wallets SET held_micros = held_micros + 303 WHERE id = :w"), {"w": wallet.id})
    assert cli_json(database_url, "holds", "sweep", "--json")["released_micros"] == 0  # not expired yet
    later = (now + dt.timedelta(seconds=901)).isoformat()
    assert cli_json(database_url, "holds", "sweep", "--now", later, "--json")["released_micros"] == 303
    assert wallet_row(broker, org["organization_id"]).held_micros == 0
    assert run_cli(database_url, "verify-ledger").returncode == 0
    assert run_cli(database_url, "holds", "sweep", "--now", "yesterday", check=False).returncode == 1
    assert broker.rows(UsageRecord) == []

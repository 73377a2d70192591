"""Money and limits: processing holds its estimate first (too little balance fails the
recording, a top-up and reprocess finish it), corrupt audio is never charged, the plan's
max_recordings and storage limits hold at their edges, and roles decide who deletes."""

from __future__ import annotations

from sqlalchemy import update

from aibroker.billing.audit import verify
from aibroker.models import Organization, PlanRow, UsageRecord, Wallet
from tests.recordings.conftest import process_jobs, upload_chunked
from tests.support.accounts import bearer, signup


def _balance(broker, org_id):
    broker.flush()
    [wallet] = broker.rows(Wallet, Wallet.organization_id == org_id)
    return wallet.balance_micros, wallet.held_micros


def test_too_little_balance_fails_then_a_top_up_and_reprocess_finish(broker, audio_files):
    poor = broker.create_org("Poor", credit="0.001", plan="professional")
    with broker.client(poor["api_key"]) as http:
        rec = upload_chunked(http, audio_files["wav"], 60_000)
        process_jobs(broker)
        failed = http.get(f"/api/status/{rec['id']}").json()
        assert failed["status"] == "failed" and failed["failure"]["code"] == "insufficient_balance"
        assert _balance(broker, poor["organization_id"]) == (1000, 0)  # nothing charged, nothing left held
        assert [r for r in broker.rows(UsageRecord, UsageRecord.organization_id == poor["organization_id"])
                if r.status == "success"] == []
        with broker.admin() as admin:
            assert admin.post(f"/api/admin/wallets/{poor['organization_id']}/topup", json={"amount_usd": "1"}).status_code == 200
        again = http.post(f"/api/recordings/{rec['id']}/reprocess")
        assert again.status_code == 200 and again.json()["status"] == "uploaded"
        assert http.post(f"/api/recordings/{rec['id']}/reprocess").json()["error"]["code"] == "recording_not_reprocessable"
        process_jobs(broker)
        done = http.get(f"/api/recordings/{rec['id']}").json()
    assert done["status"] == "analyzed" and done["failure"] is None and done["cost_micros"] > 0
    balance, held = _balance(broker, poor["organization_id"])
    assert held == 0 and balance == 1_001_000 - done["cost_micros"]
    assert verify(broker.db).ok


def test_truncated_audio_fails_with_its_reason_and_costs_nothing(broker, org, http, audio_files):
    data = audio_files["mp3"]
    rec = upload_chunked(http, data[: len(data) // 2], 60_000)
    assert rec["status"] == "uploaded"  # the header is fine: only decoding finds the cut
    process_jobs(broker)
    status = http.get(f"/api/status/{rec['id']}").json()
    assert status["status"] == "failed" and status["failure"]["code"] == "truncated_media"
    assert broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"]) == []
    assert _balance(broker, org["organization_id"]) == (10_000_000, 0)


def _limit(broker, **limits):
    with broker.db.begin() as conn:
        conn.execute(update(PlanRow).where(PlanRow.slug == "professional").values(**limits))


def test_max_recordings_at_its_edge(broker, org, http):
    _limit(broker, max_recordings=2)
    first, second = (http.post("/api/recordings", json={}) for _ in range(2))
    assert first.status_code == second.status_code == 201
    third = http.post("/api/recordings", json={})
    assert third.status_code == 403 and third.json()["error"]["code"] == "plan_limit_max_recordings"
    assert http.delete(f"/api/recordings/{first.json()['id']}").status_code == 204
    assert http.post("/api/recordings", json={}).status_code == 201  # deleting freed a place


def test_storage_quota_at_its_edge_and_shown_on_the_organization(broker, org, http, audio_files):
    data = audio_files["wav"]
    _limit(broker, max_storage_bytes=len(data))
    over = http.post("/api/recordings", json={"total_bytes": len(data) + 1})
    assert over.status_code == 413 and over.json()["error"]["code"] == "storage_quota_exceeded"
    fits = http.post("/api/upload", files={"file": ("exact.wav", data, "audio/wav")})
    assert fits.status_code == 201, fits.text  # exactly at the limit
    extra = http.post("/api/recordings", json={}).json()
    one_more = http.post(f"/api/chunks/{extra['id']}", content=b"x", headers={"x-chunk-index": "0"})
    assert one_more.status_code == 413 and one_more.json()["error"]["code"] == "storage_quota_exceeded"
    direct = http.post("/api/upload", files={"file": ("more.wav", data, "audio/wav")})
    assert direct.status_code == 413
    with broker.admin() as admin:
        shown = admin.get(f"/api/organizations/{org['organization_id']}", headers={"x-organization-id": org["organization_id"]}).json()
    assert shown["current_storage_bytes"] == len(data) and shown["currentStorageGB"] == round(len(data) / 1024**3, 6)
    assert http.delete(f"/api/recordings/{fits.json()['id']}").status_code == 204
    assert http.get(f"/api/recordings/{fits.json()['id']}").status_code == 404
    assert broker.scalar("SELECT used_bytes FROM storage_usage WHERE organization_id = :o", o=org["organization_id"]) == 0
    again = http.post(f"/api/chunks/{extra['id']}", content=b"x", headers={"x-chunk-index": "0"})
    assert again.status_code == 200


def test_roles_decide_who_deletes_and_codes_work_where_enabled(broker, audio_files):
    owner = signup(broker, "rec-owner@example.com", organization_name="Recorders")
    org_id = owner["organization"]["id"]
    with broker.db.begin() as conn:  # FREE allows one user
        conn.execute(update(Organization).where(Organization.id == org_id).values(plan="professional"))
    with broker.client() as http:
        invite = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                           json={"email": "member@recorders.example", "role": "MEMBER"}).json()
        accepted = http.post("/api/invitations/accept", json={"token": invite["token"], "password": "field-pass-2024"})
        assert accepted.status_code == 200, accepted.text
        member = accepted.json()
        as_owner, as_member = bearer(owner["access_token"]), bearer(member["access_token"])
        owners = http.post("/api/recordings", json={"title": "owner's"}, headers=as_owner).json()
        mine = http.post("/api/recordings", json={"title": "member's"}, headers=as_member)
        assert mine.status_code == 201 and mine.json()["user_id"] == member["user_id"]
        assert http.get(f"/api/recordings/{owners['id']}", headers=as_member).status_code == 200
        denied = http.delete(f"/api/recordings/{owners['id']}", headers=as_member)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "recording_delete_denied"
        assert http.delete(f"/api/recordings/{mine.json()['id']}", headers=as_member).status_code == 204
        code = http.post(f"/api/organizations/{org_id}/code/rotate", headers=as_owner).json()["code"]
        disabled = http.get("/api/recordings", headers={"x-organization-code": code})
        assert disabled.status_code == 403 and disabled.json()["error"]["code"] == "code_auth_disabled"
        http.patch(f"/api/organizations/{org_id}", json={"allow_code_auth": True}, headers=as_owner)
        by_code = {"x-organization-code": code, "x-user-id": member["user_id"]}
        listed = http.get("/api/recordings", headers=by_code)
        assert listed.status_code == 200 and [r["id"] for r in listed.json()["data"]] == [owners["id"]]
        made = http.post("/api/upload", files={"file": ("c.wav", audio_files["wav"], "audio/wav")}, headers=by_code)
        assert made.status_code == 201 and made.json()["user_id"] == member["user_id"]
        assert http.delete(f"/api/recordings/{owners['id']}", headers=by_code).status_code == 403
        assert http.delete(f"/api/recordings/{made.json()['id']}", headers=by_code).status_code == 204
        assert http.delete(f"/api/recordings/{owners['id']}", headers=as_owner).status_code == 204
        assert http.get("/api/recordings").status_code == 401

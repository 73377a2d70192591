"""The whole flow on the S3 backend, against moto's S3 server process over HTTP: chunks,
multipart assembly, probing through ranged reads, processing, Range download, delete."""

from __future__ import annotations

import pytest

from tests.recordings.conftest import process_jobs, upload_chunked
from tests.support.moto import moto_server, s3_env  # noqa: F401 - the fixture


@pytest.fixture
def bucket(moto_server):  # noqa: F811
    return moto_server.new_bucket()


@pytest.fixture
def broker_env(broker_env, moto_server, bucket):  # noqa: F811
    return {**broker_env, **s3_env(moto_server, bucket)}


def _keys(moto, bucket):
    return sorted(o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents") or [])


def test_recording_on_s3(broker, org, http, audio_files, moto_server, bucket):  # noqa: F811
    data = audio_files["m4a"]
    rec = upload_chunked(http, data, 16 * 1024)
    org_id = org["organization_id"]
    assert _keys(moto_server, bucket) == [f"{org_id}/recordings/{rec['id']}/audio"]  # the chunks are gone
    stored = moto_server.client().get_object(Bucket=bucket, Key=f"{org_id}/recordings/{rec['id']}/audio")["Body"].read()
    assert stored == data
    assert process_jobs(broker)["completed"] == 1
    assert http.get(f"/api/status/{rec['id']}").json()["status"] == "analyzed"
    part = http.get(f"/api/recordings/{rec['id']}/audio", headers={"range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert http.delete(f"/api/recordings/{rec['id']}").status_code == 204
    assert _keys(moto_server, bucket) == []

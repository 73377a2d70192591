"""moto's standalone S3 server as a real process on a free port, for the S3 tests (started
and stopped by its own pid), and a fresh bucket per test."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest

from tests.support.fleet import free_port

ACCESS_KEY, SECRET_KEY, REGION = "testing", "testing", "us-east-1"


@dataclass
class MotoServer:
    url: str
    process: subprocess.Popen[bytes]

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def new_bucket(self) -> str:
        name = f"rec-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    port = free_port()
    log = Path(tmp_path_factory.mktemp("moto")) / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            assert process.poll() is None, log.read_text()[-2000:]
            try:
                httpx.get(url + "/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "moto did not start"
                time.sleep(0.05)  # polling for readiness
        yield MotoServer(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def s3_env(moto: MotoServer, bucket: str) -> dict[str, str]:
    """The broker settings for the s3 backend on this server and bucket."""
    return {"AIBROKER_STORAGE_BACKEND": "s3", "AIBROKER_S3_BUCKET": bucket, "AIBROKER_S3_ENDPOINT_URL": moto.url,
            "AIBROKER_S3_REGION": REGION, "AIBROKER_S3_ACCESS_KEY_ID": ACCESS_KEY, "AIBROKER_S3_SECRET_ACCESS_KEY": SECRET_KEY}

"""Schemathesis over the whole OpenAPI (issue 18): every operation, fuzzed with a tenant API
key and again with the platform key acting for the organization, never answers 5xx, and
every answer matches its documented schema and content type (timestamps with their offset).

The operations are dealt round-robin (by sorted path) into PARTS groups, each group a test
of its own for each key, so pytest-xdist spreads the fuzzing over its workers.

Bounded so CI stays fast: a fixed seed, AIBROKER_FUZZ_EXAMPLES
examples per operation (valid and invalid data alike, plus schemathesis's boundary "coverage"
cases), no shrinking. Each failing operation is reported with the request that failed, as a
curl command to replay. Webhook and payment routes are fuzzed unsigned: they must answer 4xx
like every other bad request.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.broker import ADMIN_TOKEN, BrokerServer, serving

EXAMPLES = os.environ.get("AIBROKER_FUZZ_EXAMPLES", "10")
# What each response must pass (schemathesis check names, comma-separated).
CHECKS = os.environ.get("AIBROKER_FUZZ_CHECKS", "not_a_server_error,response_schema_conformance,content_type_conformance")
SEED = os.environ.get("AIBROKER_FUZZ_SEED", "18")
ST = Path(sys.executable).with_name("st")
PARTS = 4


@pytest.fixture
def fuzz_broker(database_url: str, broker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[BrokerServer]:
    env = {
        **broker_env,
        "AIBROKER_MOCK_LATENCY_MS": "0",
        "AIBROKER_UPSTREAM_TIMEOUT_SECONDS": "2",
        # configured, so unsigned payment webhooks meet the signature check, not "not configured"
        "STRIPE_WEBHOOK_SECRET": "whsec_fuzz",
        "MERCADOPAGO_WEBHOOK_SECRET": "mp-fuzz",
    }
    with serving(database_url, env, monkeypatch) as server:
        yield server


def _part(broker: BrokerServer, part: int) -> str:
    """An anchored regex of the paths in group `part` (every PARTS-th path, sorted)."""
    paths = sorted(httpx.get(f"{broker.url}/openapi.json", timeout=30).json()["paths"])
    mine = paths[part::PARTS]
    assert mine, f"no operations in part {part} of {len(paths)} paths"
    return "^(" + "|".join(re.escape(p) for p in mine) + ")$"


def _fuzz(broker: BrokerServer, label: str, headers: dict[str, str], workdir: Path, paths: str) -> str | None:
    """Run schemathesis once over the matching paths; None when every check passed, else its
    failure report."""
    command = [
        str(ST), "run", f"{broker.url}/openapi.json", "--include-path-regex", paths,
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", EXAMPLES, "--seed", SEED, "--no-shrink",
        "--mode", "all", "--workers", "1", "--request-timeout", "30",
        "--continue-on-failure", "--suppress-health-check", "all", "--warnings", "off",
        "--generation-database", "none", "--output-sanitize", "false", "--no-color",
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    # in a directory of its own: schemathesis keeps a cache of crashes where it runs
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, cwd=workdir)
    if run.returncode == 0:
        return None
    failures = run.stdout[run.stdout.find("FAILURES"):] if "FAILURES" in run.stdout else run.stdout
    return f"[{label}] schemathesis exited {run.returncode}:\n{failures[-20000:]}\n{run.stderr[-2000:]}"


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("label", ["tenant key", "platform key"])
def test_no_operation_answers_5xx(fuzz_broker: BrokerServer, tmp_path: Path, label: str, part: int) -> None:
    org = fuzz_broker.create_org("Fuzz Co", credit="5")
    headers = {
        "tenant key": {"authorization": f"Bearer {org['api_key']}"},
        "platform key": {"authorization": f"Bearer {ADMIN_TOKEN}", "x-organization-id": org["organization_id"]},
    }[label]
    report = _fuzz(fuzz_broker, label, headers, tmp_path, _part(fuzz_broker, part))
    assert report is None, report

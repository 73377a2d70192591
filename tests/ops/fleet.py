"""Real `aibroker serve` processes for the ops tests, started and stopped by their own pids."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support import fleet as support
from tests.support.fleet import AIBROKER, ROOT


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIBROKER_DATABASE_URL": database_url, "AIBROKER_LOG_LEVEL": "warning"}
    done = subprocess.run([AIBROKER, *args], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, f"aibroker {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def cli_json(database_url: str, *args: str) -> Any:
    return json.loads(run_cli(database_url, *args).stdout)


class Fleet(support.Fleet):
    """Brokers with the mock answering at once and no Redis (the burst is about the database)."""

    def __init__(self, url: str, logs: Path, processes: int, env: dict[str, str]) -> None:
        super().__init__(url, logs, processes, {"AIBROKER_MOCK_LATENCY_MS": "0", **env})
        self.env.pop("AIBROKER_REDIS_URL", None)

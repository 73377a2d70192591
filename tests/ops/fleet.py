"""Real `aibroker serve` processes for the ops tests, started and stopped by their own pids."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
AIBROKER = str(ROOT / ".venv" / "bin" / "aibroker")
ADMIN = "test-admin-token"


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIBROKER_DATABASE_URL": database_url, "AIBROKER_LOG_LEVEL": "warning"}
    done = subprocess.run([AIBROKER, *args], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, f"aibroker {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def cli_json(database_url: str, *args: str) -> Any:
    return json.loads(run_cli(database_url, *args).stdout)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Node:
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Fleet:
    def __init__(self, url: str, logs: Path, processes: int, env: dict[str, str]) -> None:
        self.env = {
            **os.environ,
            "AIBROKER_DATABASE_URL": url,
            "AIBROKER_ADMIN_TOKEN": ADMIN,
            "AIBROKER_LOG_LEVEL": "warning",
            "AIBROKER_MOCK_LATENCY_MS": "0",
            **env,
        }
        self.env.pop("AIBROKER_REDIS_URL", None)
        self.nodes = [Node(_free_port(), logs / f"broker-{i}.log") for i in range(processes)]

    def start_all(self, timeout: float = 60.0) -> None:
        for node in self.nodes:
            with node.log.open("ab") as log:
                node.process = subprocess.Popen(
                    [AIBROKER, "serve", "--port", str(node.port)], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                )
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while True:
                assert node.process is not None and node.process.poll() is None, node.log.read_text()[-3000:]
                try:
                    if httpx.get(node.url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"broker on {node.port} did not start:\n{node.log.read_text()[-3000:]}"
                time.sleep(0.1)  # polling for readiness

    def tail(self, chars: int = 2000) -> str:
        return "\n".join(node.log.read_text()[-chars:] for node in self.nodes if node.log.exists())

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.kill(node.process.pid, signal.SIGKILL)
                    node.process.wait(timeout=10)

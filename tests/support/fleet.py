"""Real `aibroker serve` processes on one database, for the multiprocess tests: started and
stopped by their own pids (only the ones a test started; never left running)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
AIBROKER = str(Path(sys.executable).parent / "aibroker")
ADMIN = "test-admin-token"


def free_port() -> int:
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
    """`processes` brokers on `url`, each logging to its own file under `logs`."""

    def __init__(self, url: str, logs: Path, processes: int, env: dict[str, str]) -> None:
        self.env = {
            **os.environ,
            "AIBROKER_DATABASE_URL": url,
            "AIBROKER_ADMIN_TOKEN": ADMIN,
            "AIBROKER_LOG_LEVEL": "warning",
            **env,
        }
        self.nodes = [Node(free_port(), logs / f"broker-{i}.log") for i in range(processes)]

    def start(self, node: Node) -> None:
        with node.log.open("ab") as log:
            node.process = subprocess.Popen(
                [AIBROKER, "serve", "--port", str(node.port)], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, node: Node, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert node.process is not None and node.process.poll() is None, node.log.read_text()[-3000:]
            try:
                if httpx.get(node.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # polling for readiness, not a timing assumption
        raise AssertionError(f"broker on port {node.port} did not start:\n{node.log.read_text()[-3000:]}")

    def start_all(self) -> None:
        # Started in parallel, then waited for: on a small machine each takes seconds.
        for node in self.nodes:
            self.start(node)
        for node in self.nodes:
            self.wait_ready(node)

    @contextlib.contextmanager
    def running(self) -> Iterator[Fleet]:
        """Every node started for the block, and stopped after it whatever happens."""
        try:
            self.start_all()
            yield self
        finally:
            self.stop_all()

    def kill(self, node: Node) -> None:
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGKILL)
        node.process.wait(timeout=10)

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

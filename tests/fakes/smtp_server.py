"""A real SMTP server (aiosmtpd) in its own process, saving each message it accepts as a
file, for tests of e-mail delivery. `python -m tests.fakes.smtp_server PORT DIR` prints
"ready" once listening; `SmtpProcess` starts and stops it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any


class _Saver:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        name = uuid.uuid4().hex
        tmp = self.directory / f".{name}.tmp"
        header = f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n".encode()
        tmp.write_bytes(header + envelope.original_content)
        tmp.rename(self.directory / f"{name}.eml")  # whole files only: a reader never sees half a message
        return "250 Message accepted for delivery"


def main() -> None:
    from aiosmtpd.controller import Controller

    port, directory = int(sys.argv[1]), Path(sys.argv[2])
    controller = Controller(_Saver(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or kills us)
    finally:
        controller.stop()


class SmtpProcess:
    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 15.0) -> SmtpProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        root = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.smtp_server", str(self.port), str(self.directory)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if line.strip() != "ready" or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"the SMTP server did not start: {line!r}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.stdin:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def messages(self) -> list[Message]:
        return [message_from_bytes(p.read_bytes()) for p in sorted(self.directory.glob("*.eml"))]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages()
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} messages, got {len(self.messages())}")


if __name__ == "__main__":
    main()

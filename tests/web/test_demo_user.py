"""`make run` (aibroker demo) prints the console's URL and a demo OWNER's e-mail and password,
which sign in; only the password's hash is stored."""

from __future__ import annotations

import queue
import re
import sqlite3
import subprocess
import threading
import time

import httpx

from tests.test_walkthrough import AIBROKER, ROOT, _env, _free_port
from tests.web.support import csrf_of

CONSOLE_LINE = re.compile(r"Console: (\S+)\s+e-mail: (\S+)\s+password \(new at every start, shown once\): (\S+)")


def test_the_demo_prints_a_console_user_who_signs_in_as_owner(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "demo.db"
    port = _free_port()
    proc = subprocess.Popen([AIBROKER, "demo", "--port", str(port)], env=_env(f"sqlite+aiosqlite:///{db}"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        found, printed, deadline = None, [], time.monotonic() + 60
        while found is None and time.monotonic() < deadline:
            try:
                printed.append(lines.get(timeout=1))
            except queue.Empty:
                continue
            found = CONSOLE_LINE.search(printed[-1])
        assert found, "".join(printed)
        url, email, password = found.groups()
        assert url == f"http://127.0.0.1:{port}/console"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=10) as http:
            form = None
            while time.monotonic() < deadline:
                try:
                    form = http.get("/console/login")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert form is not None and form.status_code == 200
            signed = http.post("/console/login", data={"email": email, "password": password, "csrf_token": csrf_of(form.text)})
            assert signed.status_code == 303 and signed.headers["location"] == "/console/overview"
            overview = http.get("/console/overview")
            assert overview.status_code == 200 and "Demo" in overview.text and "OWNER" in overview.text
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT password_hash FROM users WHERE email = ?", (email,)).fetchone()[0]
        assert stored.startswith("$argon2") and password not in stored
    finally:
        proc.terminate()
        proc.wait(timeout=30)

"""The walkthrough a new user does: `make run PORT=...`, the demo (port bound before any key
is minted, a platform admin token printed), `aibroker org list|show|update`, README snippets."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
AIBROKER = str(ROOT / ".venv" / "bin" / "aibroker")


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIBROKER_", "OPENAI_", "ANTHROPIC_"))}
    return {**env, "AIBROKER_DATABASE_URL": database_url, "AIBROKER_LOG_LEVEL": "warning"}


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AIBROKER, *args], env=_env(database_url), capture_output=True, text=True, timeout=120, cwd=ROOT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_make_run_serves_on_the_port_given():
    for args, port in (([], "8080"), (["PORT=8090"], "8090")):
        done = subprocess.run(["make", "-n", "run", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert f"aibroker demo --host 127.0.0.1 --port {port}" in done.stdout


def test_demo_on_a_busy_port_exits_before_minting(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/demo.db"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = subprocess.run([AIBROKER, "demo", "--port", str(port)], env=_env(url), capture_output=True, text=True,
                              timeout=120, cwd=ROOT)
    assert done.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "abk_" not in done.stdout + done.stderr and "AIBROKER_ADMIN_TOKEN" not in done.stdout
    assert not (tmp_path / "demo.db").exists()  # not even migrated: nothing was minted


def test_demo_prints_an_admin_token_that_works(tmp_path):
    url, port = f"sqlite+aiosqlite:///{tmp_path}/demo.db", _free_port()
    proc = subprocess.Popen([AIBROKER, "demo", "--port", str(port)], env=_env(url), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        printed, token, deadline = [], None, time.monotonic() + 60
        while not (printed and "models always work" in printed[-1]) and time.monotonic() < deadline:
            try:
                printed.append(lines.get(timeout=1))
            except queue.Empty:
                continue
            if found := re.search(r"AIBROKER_ADMIN_TOKEN=(\S+)", printed[-1]):
                token = found.group(1)
        assert token, "".join(printed)
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/admin/organizations", headers={"authorization": f"Bearer {token}"})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200, answer
        assert [o["slug"] for o in answer.json()["data"]] == ["demo"]
        text = "".join(printed)
        assert f"http://127.0.0.1:{port}/v1" in text and ".venv/bin/python -" in text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_org_list_show_update(database_url):
    created = json.loads(_cli(database_url, "org", "create", "Walk Co", "--credit", "3", "--json").stdout)
    listed = json.loads(_cli(database_url, "org", "list", "--json").stdout)
    assert {"id": created["organization_id"], "name": "Walk Co", "slug": "walk-co", "plan": "free", "status": "active"} in listed
    shown = json.loads(_cli(database_url, "org", "show", "walk-co", "--json").stdout)
    assert (shown["id"], shown["balance_micros"], shown["api_keys"]) == (created["organization_id"], 3_000_000, 1)
    assert "api_key" not in shown and "abk_" not in json.dumps(shown)
    updated = json.loads(_cli(database_url, "org", "update", "walk-co", "--plan", "starter", "--status", "suspended", "--json").stdout)
    assert (updated["plan"], updated["status"]) == ("starter", "suspended")
    assert json.loads(_cli(database_url, "org", "show", created["organization_id"], "--json").stdout)["plan"] == "starter"
    refused = _cli(database_url, "org", "update", "walk-co", "--plan", "nope")
    assert refused.returncode == 1 and "unknown plan 'nope'" in refused.stderr
    assert _cli(database_url, "org", "update", "walk-co", "--status", "sleeping").returncode == 1
    assert _cli(database_url, "org", "show", "nobody").returncode == 1


def test_readme_clients_point_at_port_8080():
    readme = (ROOT / "README.md").read_text()
    docs = "".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
    for text in (readme, docs):
        urls = re.findall(r'base_url="([^"]+)"', text) + re.findall(r"(http://127\.0\.0\.1:\d+)/(?:v1|api)", text)
        assert urls and all(":8080" in u for u in urls), urls
    assert ".venv/bin/python" in readme and "pip install openai" in readme
    assert readme.startswith("# aibroker\n\n```sh\nmake run ") and "\nmake test " in readme[:400]  # the two commands first


def test_readme_python_snippet_runs_as_printed(broker):
    """The tour's Python snippet, run with .venv/bin/python against a running broker (mock models)."""
    key = broker.create_org("Tour", credit="1")["api_key"]
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(from openai import OpenAI\n.*?)```", readme, re.S).group(1)
    code = snippet.replace("http://127.0.0.1:8080/v1", f"{broker.url}/v1").replace("abk_...", key)
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] and out[1] and "response.completed" in out, out

"""Shared helpers for aibroker benchmarks: installs, child processes, the fake
upstream, and wrk runs. Standard library only, so it runs before any venv exists."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
LITELLM_VENV = BENCH_DIR / ".venv-litellm"
PORTKEY_ENTRY = BENCH_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def log(msg: str) -> None:
    # Progress goes to stderr so stdout stays just the report.
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, text=True, **kw)


# --------------------------------------------------------------------------- installs


def ensure_apt(binaries: dict[str, str]) -> None:
    """Install the apt package for each missing binary (binary -> package)."""
    missing = sorted({pkg for binary, pkg in binaries.items() if not shutil.which(binary)})
    if not missing:
        return
    log(f"apt-get install {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", *missing], env=env, stdout=subprocess.DEVNULL)


def ensure_litellm() -> None:
    """Create bench/.venv-litellm with the pinned litellm[proxy] unless it already matches."""
    req = BENCH_DIR / "requirements-litellm.txt"
    stamp = LITELLM_VENV / ".installed-requirements"
    if stamp.exists() and stamp.read_text() == req.read_text() and (LITELLM_VENV / "bin" / "litellm").exists():
        return
    log("installing litellm[proxy] into bench/.venv-litellm (takes a minute)")
    if not (LITELLM_VENV / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", str(LITELLM_VENV)])
    run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "-r", str(req)])
    stamp.write_text(req.read_text())


def ensure_portkey() -> None:
    """npm ci from the lockfile unless node_modules already has the gateway."""
    if PORTKEY_ENTRY.exists():
        return
    if not shutil.which("npm"):
        ensure_apt({"npm": "npm"})
    log("installing @portkey-ai/gateway into bench/node_modules")
    run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BENCH_DIR)


def tool_version(argv: list[str], pattern: str) -> str:
    """First match of pattern in a tool's combined output, or '?'."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(1) if m else "?"


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Owns every child process; `with Processes() as procs:` guarantees they all die."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen, Path]] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def start(self, name: str, argv: list[str], log_path: Path, env: dict | None = None,
              cwd: Path | None = None) -> subprocess.Popen:
        # Own session/process group: Ctrl-C reaches only us, and killpg also gets
        # the child's own workers (uvicorn/gunicorn/nginx workers).
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=cwd, start_new_session=True)
        self.children.append((name, proc, log_path))
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = 8.0) -> None:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Always sweep the group: workers can outlive their parent.
        _signal_group(proc, signal.SIGKILL)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self) -> None:
        for _, proc, _ in reversed(self.children):
            self.stop(proc)
        self.children.clear()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0, want_ok: bool = True) -> None:
    """Poll url until it answers (2xx if want_ok); fail fast if proc exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before becoming ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 300 or not want_ok:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:
            if not want_ok:
                return
            last = f"HTTP {e.code}"
        except (OSError, urllib.error.URLError) as e:
            last = str(e)
        time.sleep(0.25)
    raise RuntimeError(f"not ready after {timeout:.0f}s ({last})")


def post_json(url: str, body: dict, headers: dict, timeout: float = 15.0) -> tuple[int, str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


# --------------------------------------------------------------------------- fake upstream

USAGE = {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}
STREAM_CHUNKS = 50


def canned_completion() -> str:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": USAGE,
    }, separators=(",", ":"))


def canned_stream() -> str:
    """SSE body: 50 content chunks, a finish chunk, a usage chunk, then [DONE]."""
    def chunk(choices: list, usage: dict | None = None) -> str:
        obj = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
               "model": "gpt-4o-mini", "choices": choices}
        if usage is not None:
            obj["usage"] = usage
        return "data: " + json.dumps(obj, separators=(",", ":")) + "\n\n"

    events = [chunk([{"index": 0, "delta": {"role": "assistant", "content": f"tok{i} "}, "finish_reason": None}])
              for i in range(STREAM_CHUNKS)]
    events.append(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    events.append(chunk([], USAGE))
    events.append("data: [DONE]\n\n")
    return "".join(events)


def _nginx_quote(text: str) -> str:
    # nginx single-quoted strings understand \\ \' and \n; '$' would start a variable.
    assert "$" not in text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def nginx_config(port: int, prefix: Path) -> str:
    return f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    # wrk and the gateways keep connections open; nginx's default of 1000
    # requests per connection would add reconnects to every measurement.
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = /v1/chat/completions {{
            default_type application/json;
            return 200 {_nginx_quote(canned_completion())};
        }}
        # The SSE body exceeds nginx's 4 KiB config-token limit, so it is a file.
        # Static files refuse POST, hence return 405 + error_page, which
        # re-dispatches as GET to the internal location serving the file.
        location = /stream/v1/chat/completions {{
            error_page 405 =200 /_canned/stream.sse;
            return 405;
        }}
        location /_canned/ {{
            internal;
            alias {prefix}/canned/;
            default_type text/event-stream;
            etag off;
        }}
        location / {{
            default_type application/json;
            return 404 '{{"error":{{"message":"fake upstream: unknown path","type":"invalid_request_error"}}}}';
        }}
    }}
}}
"""


def start_fake_upstream(procs: Processes, tmp: Path) -> int:
    """Run nginx in the foreground as a child; return its port."""
    prefix = tmp / "nginx"
    prefix.mkdir(mode=0o755)
    # Workers run as nobody when we are root: they must reach the canned SSE file
    # (traverse-only on tmp, so nothing else in it becomes listable).
    tmp.chmod(tmp.stat().st_mode | 0o711)
    port = free_port()
    conf = prefix / "nginx.conf"
    (prefix / "canned").mkdir(mode=0o755)
    (prefix / "canned" / "stream.sse").write_text(canned_stream())
    (prefix / "canned" / "stream.sse").chmod(0o644)
    conf.write_text(nginx_config(port, prefix))
    # -e: keep nginx away from /var/log/nginx before it reads our config.
    proc = procs.start("nginx", ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                       prefix / "stdout.log")
    wait_http(f"http://127.0.0.1:{port}/", proc, timeout=15, want_ok=False)
    return port


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx responses + socket errors (connect/read/write/timeout)
    raw: str = field(repr=False, default="")


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(out: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    if not (rps and p50 and p99 and total):
        raise ValueError(f"cannot parse wrk output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    return WrkResult(float(rps.group(1)), _ms(*p50.groups()), _ms(*p99.groups()), int(total.group(1)), errors, out)


def wrk_script(path: Path, body: dict, headers: dict) -> Path:
    """Lua script making wrk send our POST; long brackets avoid Lua escaping."""
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{json.dumps(body)}]==]",
             'wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[ [==[{k}]==] ] = [==[{v}]==]" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(url: str, script: Path, connections: int, duration: float, threads: int | None = None) -> WrkResult:
    threads = threads or (1 if connections == 1 else 2)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
            "--latency", "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    return parse_wrk(out.stdout)

"""Where a chat completion's CPU time goes inside aibroker: one worker under yappi's CPU clock
(every thread), wrk at c1 against nginx as the upstream, then the CPU time per request of
each pipeline stage (parse, authenticate, route, admit, hold, upstream call, settle,
respond), from the profile. The profiler inflates every figure; the shares are the point.

    .venv/bin/python bench/stages.py                 # 10 s at c1 after a 2 s warm-up
    .venv/bin/python bench/stages.py --duration 20 --concurrency 64
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

PYTHON = h.REPO_DIR / ".venv" / "bin" / "python"
AIBROKER = h.REPO_DIR / ".venv" / "bin" / "aibroker"
# stage -> the functions whose total (own + callees) CPU time it is; names as yappi reports them.
STAGES = [
    ("parse the body", ["read_json"]),
    ("authenticate", ["authenticate"]),
    ("route (model, feature, candidates)", ["Gateway.plan_chat"]),
    ("admit (plan access, limits, quotas)", ["Gateway.admit"]),
    ("hold (reserve on the wallet)", ["Gateway.hold"]),
    ("upstream call (adapter, HTTP client)", ["AttemptRunner.run"]),
    ("settle (money writer: debit, usage, commit)", ["MoneyWriter._write_inline", "MoneyWriter._write_sync"]),
    ("respond (render, send)", ["JSONResponse.render", "starlette/responses.py:*.__call__"]),
]
COUNTED = "chat_completions"


def _ensure_yappi() -> None:
    if subprocess.run([str(PYTHON), "-c", "import yappi"], capture_output=True).returncode != 0:
        h.log("installing the bench extra (yappi) into .venv")
        h.run([str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f"{h.REPO_DIR}[bench]"])


def _broker_env(tmp: Path, upstream: int) -> dict:
    return dict(os.environ, AIBROKER_DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/stages.db", OPENAI_API_KEY="sk-bench",
                OPENAI_BASE_URL=f"http://127.0.0.1:{upstream}/v1", AIBROKER_ADMIN_TOKEN="bench-admin",
                AIBROKER_LOG_LEVEL="warning")


def _api_key(env: dict, tmp: Path) -> str:
    h.run([str(AIBROKER), "migrate"], env=env, cwd=tmp, capture_output=True)
    out = h.run([str(AIBROKER), "org", "create", "stages", "--credit", "1000000", "--plan", "unlimited", "--json"],
                env=env, cwd=tmp, capture_output=True)
    return json.loads(re.search(r"\{.*\}", out.stdout, re.S).group(0))["api_key"]


def _matches(function: dict, pattern: str) -> bool:
    """`Class.method`, or `path/suffix.py:*.name` for any class's method in that module."""
    if ":" not in pattern:
        return function["name"] == pattern
    module, name = pattern.split(":")
    return function["module"].endswith(module) and function["name"].endswith(name.lstrip("*"))


def _total(functions: list[dict], patterns: list[str]) -> float:
    return sum(f["ttot"] for f in functions if any(_matches(f, p) for p in patterns))


def report(profile: dict, wrk: h.WrkResult, concurrency: int) -> str:
    functions = profile["functions"]
    requests = sum(f["calls"] for f in functions if f["name"] == COUNTED) or 1
    process = sum(t["ttot"] for t in profile["threads"])
    lines = [
        f"# Where the CPU goes: {requests:,} chat completions at c{concurrency} under the profiler",
        "",
        f"wrk: {wrk.rps:,.0f} req/s under the profiler; process CPU {process / requests * 1e6:,.0f} µs/request "
        "(all threads). A stage is its functions' CPU time with their callees'.",
        "",
        "| stage | CPU µs/request | share of process CPU |",
        "|---|---:|---:|",
    ]
    staged = 0.0
    for stage, names in STAGES:
        spent = _total(functions, names)
        staged += spent
        lines.append(f"| {stage} | {spent / requests * 1e6:,.0f} | {spent / process:.0%} |")
    rest = process - staged
    lines.append(f"| everything else (ASGI server, event loop, routing glue) | {rest / requests * 1e6:,.0f} | {rest / process:.0%} |")
    top = sorted(functions, key=lambda f: f["tsub"], reverse=True)[:12]
    lines += ["", "Functions with the most own CPU time:", "", "| function | module | own µs/request |", "|---|---|---:|"]
    lines += [f"| {f['name']} | {Path(f['module']).name} | {f['tsub'] / requests * 1e6:,.1f} |" for f in top]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    _ensure_yappi()
    with tempfile.TemporaryDirectory(prefix="aibroker-stages-") as name, h.Processes() as procs:
        tmp = Path(name)
        upstream = h.start_fake_upstream(procs, tmp)
        env = _broker_env(tmp, upstream)
        key = _api_key(env, tmp)
        port, out = h.free_port(), tmp / "profile.json"
        argv = [str(PYTHON), str(Path(__file__).with_name("_profiled_serve.py")), "--port", str(port), "--out", str(out)]
        server = procs.start("aibroker", argv, tmp / "aibroker.log", env=env, cwd=tmp)
        h.wait_http(f"http://127.0.0.1:{port}/healthz", server, timeout=90)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 32}
        script = h.wrk_script(tmp / "chat.lua", body, {"Authorization": f"Bearer {key}", "Cache-Control": "no-store"})
        if args.warmup > 0:
            h.run_wrk(url, script, args.concurrency, args.warmup)
        os.kill(server.pid, signal.SIGUSR1)
        time.sleep(0.2)  # let the signal be handled before the measured run starts
        result = h.run_wrk(url, script, args.concurrency, args.duration)
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        profile = json.loads(out.read_text())
    text = report(profile, result, args.concurrency)
    print(text)
    results = h.BENCH_DIR / "results" / "stages.md"
    results.write_text(text)
    h.log(f"wrote {results.relative_to(h.REPO_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

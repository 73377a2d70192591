#!/usr/bin/env python3
"""Non-streaming chat-completion throughput/latency: aibroker vs LiteLLM vs Portkey.

Every gateway proxies to the same nginx fake upstream that answers instantly,
so the numbers measure gateway overhead only. Run: python3 bench/gateway.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402
from _gateway_report import CONCURRENCIES, report  # noqa: E402

AIBROKER_BIN = h.REPO_DIR / ".venv" / "bin" / "aibroker"
ALL_TARGETS = ["direct", "aibroker-1w", "aibroker-2w", "aibroker-1w-noledger", "litellm", "portkey"]
# Not run by default: the same app under granian (Rust HTTP server) instead of uvicorn + httptools.
EXTRA_TARGETS = ["aibroker-1w-granian", "aibroker-4w"]
LITELLM_MASTER_KEY = "sk-bench-master-7f3a"
RESULTS_FILE = h.BENCH_DIR / "results" / "latest.md"
# uvicorn logging for LiteLLM: warnings and errors only, no access log.
QUIET_UVICORN_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
    "loggers": {name: {"handlers": ["stderr"], "level": "WARNING", "propagate": False}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
}


@dataclass
class Target:
    name: str
    url: str = ""  # full chat-completions URL
    model: str = "gpt-4o-mini"
    headers: dict = field(default_factory=dict)
    unavailable: str = ""  # why it could not be benchmarked
    error_sample: str = ""  # one failing response seen after a run with errors
    runs: dict = field(default_factory=lambda: {c: [] for c in CONCURRENCIES})


class Bench:
    """One benchmark session: temp dir, child processes, upstream, targets."""

    def __init__(self, args: argparse.Namespace, procs: h.Processes, tmp: Path) -> None:
        self.args, self.procs, self.tmp = args, procs, tmp
        self.upstream = 0
        self.base_path = "/v1"  # the fake upstream's OpenAI base path (streaming uses /stream/v1)
        self.aibroker_bin = Path(args.aibroker_bin)
        self._aibroker_key = ""
        self._aibroker_error = ""

    def log_file(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def start_and_wait(self, name: str, argv: list[str], ready_url: str, env: dict, timeout: float,
                       want_ok: bool = True) -> None:
        proc = self.procs.start(name, argv, self.log_file(name), env=env, cwd=self.tmp)
        try:
            h.wait_http(ready_url, proc, timeout=timeout, want_ok=want_ok)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{h.log_tail(self.log_file(name))}") from None

    # ----------------------------------------------------------------- targets

    def direct(self, t: Target) -> None:
        t.url = f"http://127.0.0.1:{self.upstream}{self.base_path}/chat/completions"

    def aibroker(self, t: Target) -> None:
        if not self.aibroker_bin.exists():
            raise RuntimeError(f"{self.aibroker_bin} not found (build aibroker into <repo>/.venv first)")
        workers = "4" if "-4w" in t.name else "2" if "-2w" in t.name else "1"
        env = self.aibroker_env()
        if t.name.endswith("-noledger"):
            env["AIBROKER_LEDGER_ENABLED"] = "false"
        key = self.aibroker_api_key(env)
        port = h.free_port()
        argv = [str(self.aibroker_bin), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", workers]
        if t.name.endswith("-granian"):
            granian = self.aibroker_bin.parent / "granian"
            if not granian.exists():
                raise RuntimeError("granian is not installed: .venv/bin/pip install -e '.[bench]'")
            subprocess.run([str(self.aibroker_bin), "migrate"], env=env, cwd=self.tmp, check=True, capture_output=True)
            argv = [str(granian), "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port", str(port),
                    "--loop", "uvloop", "--workers", workers, "--log-level", "warning", "aibroker.app:create_app"]
        self.start_and_wait(t.name, argv, f"http://127.0.0.1:{port}/healthz", env, timeout=90)
        t.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        t.model = "openai/gpt-4o-mini"
        t.headers = {"Authorization": f"Bearer {key}", "Cache-Control": "no-store"}

    def aibroker_env(self) -> dict:
        db = self.args.database_url or f"sqlite+aiosqlite:///{self.tmp}/bench.db"
        return dict(os.environ, AIBROKER_DATABASE_URL=db, OPENAI_API_KEY="sk-bench",
                    OPENAI_BASE_URL=f"http://127.0.0.1:{self.upstream}{self.base_path}",
                    AIBROKER_ADMIN_TOKEN="bench-admin", AIBROKER_LOG_LEVEL="warning")

    def aibroker_api_key(self, env: dict) -> str:
        """Migrate once and create the bench org; all aibroker variants share the database."""
        if self._aibroker_key:
            return self._aibroker_key
        if self._aibroker_error:  # don't retry: `org create` would now clash with itself
            raise RuntimeError(self._aibroker_error)
        try:
            self._aibroker_key = self._create_bench_org(env)
        except Exception as e:
            self._aibroker_error = str(e)
            raise
        return self._aibroker_key

    def _create_bench_org(self, env: dict) -> str:
        if self.args.database_url:
            recreate_postgres_db(self.args.database_url)
        for argv in ([str(self.aibroker_bin), "migrate"],
                     [str(self.aibroker_bin), "org", "create", "bench", "--credit", "1000000",
                      "--plan", self.args.aibroker_plan, "--json"]):
            out = subprocess.run(argv, env=env, cwd=self.tmp, capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                raise RuntimeError(f"`aibroker {' '.join(argv[1:])}` failed ({out.returncode}):\n"
                                   f"{(out.stderr or out.stdout).strip()[-2000:]}")
        m = re.search(r"\{.*\}", out.stdout, re.S)
        try:
            created = json.loads(m.group(0))
            key = created["api_key"]
        except (AttributeError, ValueError, KeyError):
            raise RuntimeError(f"no api_key in `aibroker org create` output: {out.stdout.strip()[:500]}") from None
        if self.args.prefill_usage:
            self._prefill(env["AIBROKER_DATABASE_URL"], created.get("organization_id"))
        return key

    def _prefill(self, url: str, organization_id: str | None) -> None:
        """Fill the database first (--prefill-usage): the figures must hold as tables grow."""
        ledger = self.args.prefill_ledger if self.args.prefill_ledger is not None else self.args.prefill_usage // 5
        argv = [str(Path(self.aibroker_bin).parent / "python"), str(Path(__file__).with_name("_prefill.py")),
                "--database-url", url, "--usage", str(self.args.prefill_usage), "--ledger", str(ledger)]
        argv += ["--also-for", organization_id] if organization_id else []
        h.log(f"prefill: {self.args.prefill_usage:,} usage records, {ledger:,} ledger entries")
        subprocess.run(argv, check=True, timeout=7200)

    def litellm(self, t: Target) -> None:
        port = h.free_port()
        config = self.tmp / "litellm.yaml"
        config.write_text(
            "model_list:\n"
            "  - model_name: gpt-4o-mini\n"
            "    litellm_params:\n"
            "      model: openai/gpt-4o-mini\n"
            f"      api_base: http://127.0.0.1:{self.upstream}{self.base_path}\n"
            "      api_key: sk-bench\n"
            "general_settings:\n"
            f"  master_key: {LITELLM_MASTER_KEY}\n"
            "litellm_settings:\n"
            "  telemetry: false\n")
        # Per-request uvicorn access lines would be a cost the other gateways don't pay.
        log_config = self.tmp / "litellm-logging.json"
        log_config.write_text(json.dumps(QUIET_UVICORN_LOGGING))
        # Offline: use the bundled model cost map instead of fetching it.
        env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
        env.pop("DATABASE_URL", None)  # no database: keys are checked against the master key only
        argv = [str(h.LITELLM_VENV / "bin" / "litellm"), "--config", str(config), "--port", str(port),
                "--host", "127.0.0.1", "--num_workers", "1", "--log_config", str(log_config)]
        self.start_and_wait(t.name, argv, f"http://127.0.0.1:{port}/health/liveliness", env, timeout=180)
        t.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        t.headers = {"Authorization": f"Bearer {LITELLM_MASTER_KEY}"}

    def portkey(self, t: Target) -> None:
        port = h.free_port()
        # --headless and NODE_ENV=production skip the log-viewer UI; 127.0.0.1 must be
        # a trusted custom host (it is by default, set explicitly to not depend on that).
        env = dict(os.environ, NODE_ENV="production", TRUSTED_CUSTOM_HOSTS="127.0.0.1,localhost")
        argv = ["node", str(h.PORTKEY_ENTRY), f"--port={port}", "--headless"]
        self.start_and_wait(t.name, argv, f"http://127.0.0.1:{port}/", env, timeout=60, want_ok=False)
        t.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        t.headers = {"x-portkey-provider": "openai",
                     "x-portkey-custom-host": f"http://127.0.0.1:{self.upstream}{self.base_path}",
                     "Authorization": "Bearer sk-bench"}

    def setup(self, t: Target) -> None:
        starter = self.aibroker if t.name.startswith("aibroker") else getattr(self, t.name)
        try:
            starter(t)
            self.smoke_test(t)
        except Exception as e:  # noqa: BLE001 - any failure just makes the target unavailable
            t.unavailable = str(e).strip()
            h.log(f"{t.name}: unavailable: {t.unavailable}")

    def smoke_test(self, t: Target) -> None:
        """One real request, so a misconfigured target fails loudly instead of benchmarking 401s."""
        status, text = h.post_json(t.url, request_body(t.model), t.headers)
        if status != 200 or '"choices"' not in text:
            raise RuntimeError(f"smoke request got HTTP {status}: {text[:500]}")


def request_body(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 50}


def recreate_postgres_db(url: str) -> None:
    """Fresh database for each run; psql talks to the server's 'postgres' maintenance db."""
    admin, dbname = postgres_admin_url(url)
    for sql in (f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)', f'CREATE DATABASE "{dbname}"'):
        out = subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {out.stderr.strip()}")


def drop_postgres_db(url: str) -> None:
    admin, dbname = postgres_admin_url(url)
    subprocess.run(["psql", admin, "-q", "-c", f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'],
                   capture_output=True, timeout=60)


def postgres_admin_url(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    dbname = parts.path.lstrip("/")
    if not re.fullmatch(r"\w+", dbname):
        raise ValueError(f"unexpected database name in {url!r}")
    return urllib.parse.urlunsplit(("postgresql", parts.netloc, "/postgres", "", "")), dbname


# --------------------------------------------------------------------------- measuring


def measure(targets: list[Target], args: argparse.Namespace, tmp: Path) -> None:
    live = [t for t in targets if not t.unavailable]
    scripts = {t.name: h.wrk_script(tmp / f"{t.name}.lua", request_body(t.model), t.headers) for t in live}
    if args.warmup > 0:
        for t in live:
            h.log(f"warm-up {t.name} ({args.warmup:g}s)")
            _wrk(t, scripts[t.name], 64, args.warmup)
    # Rounds alternate targets so slow drift (thermal, noisy neighbours) hits all alike.
    for rnd in range(1, args.rounds + 1):
        for t in live:
            for conc in CONCURRENCIES:
                res = _wrk(t, scripts[t.name], conc, args.duration)
                if res:
                    t.runs[conc].append(res)
                    h.log(f"round {rnd}/{args.rounds} {t.name} c{conc}: {res.rps:,.0f} req/s "
                          f"p50 {res.p50_ms:.2f} ms p99 {res.p99_ms:.2f} ms errors {res.errors}")
                    if res.errors and not t.error_sample:
                        t.error_sample = sample_error(t)


def sample_error(t: Target) -> str:
    """wrk only counts errors; one more request shows what they look like."""
    try:
        status, text = h.post_json(t.url, request_body(t.model), t.headers)
    except OSError as e:
        return f"request failed: {e}"
    sample = f"HTTP {status}: {' '.join(text.split())[:300]}" if status != 200 else "next request was fine (HTTP 200)"
    h.log(f"{t.name}: errors during run; sample: {sample}")
    return sample


def _wrk(t: Target, script: Path, conc: int, duration: float) -> h.WrkResult | None:
    try:
        return h.run_wrk(t.url, script, conc, duration)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
        h.log(f"{t.name} c{conc}: wrk run failed: {e}")
        return None


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--warmup", type=float, default=2, help="warm-up seconds per target at c64, 0 to skip")
    p.add_argument("--targets", default=",".join(ALL_TARGETS),
                   help=f"comma-separated subset of: {','.join(ALL_TARGETS + EXTRA_TARGETS)}")
    p.add_argument("--database-url", default="",
                   help="aibroker database instead of a temp SQLite file, e.g. "
                        "postgresql+asyncpg://postgres@127.0.0.1:5432/aibroker_bench (dropped and recreated)")
    p.add_argument("--aibroker-bin", default=str(AIBROKER_BIN),
                   help="aibroker executable (default <repo>/.venv/bin/aibroker)")
    p.add_argument("--aibroker-plan", default="unlimited",
                   help="plan of the bench org; the default plan's rate limits would turn the run into 429s")
    p.add_argument("--prefill-usage", type=int, default=0, metavar="N",
                   help="put N usage records (and --prefill-ledger ledger entries) in aibroker's database first")
    p.add_argument("--prefill-ledger", type=int, default=None, metavar="M",
                   help="ledger entries to prefill (default N/5; half are debits with their usage records)")
    p.add_argument("--skip-install", action="store_true", help="do not install missing tools")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, process logs)")
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.targets) - set(ALL_TARGETS) - set(EXTRA_TARGETS)
    if unknown:
        p.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if args.duration < 1 or args.rounds < 1:
        p.error("--duration must be >= 1 and --rounds >= 1")
    return args


def install(targets: list[str]) -> None:
    h.ensure_apt({"nginx": "nginx", "wrk": "wrk"})
    if "litellm" in targets:
        h.ensure_litellm()
    if "portkey" in targets:
        h.ensure_portkey()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM should clean up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.skip_install:
        install(args.targets)
    args.load_at_start = os.getloadavg()[0]
    if args.load_at_start > (os.cpu_count() or 1) / 2:
        h.log(f"warning: load average {args.load_at_start:.1f} - other work on this machine will skew the numbers")
    tmp = Path(tempfile.mkdtemp(prefix="aibroker-bench-"))
    targets = [Target(name) for name in args.targets]
    try:
        with h.Processes() as procs:
            bench = Bench(args, procs, tmp)
            bench.upstream = h.start_fake_upstream(procs, tmp)
            h.log(f"fake upstream (nginx) on 127.0.0.1:{bench.upstream}")
            for t in targets:
                h.log(f"starting {t.name}")
                bench.setup(t)
            measure(targets, args, tmp)
        text = report(targets, args)
    finally:
        if args.database_url and any(t.name.startswith("aibroker") for t in targets):
            drop_postgres_db(args.database_url)
        if args.keep_tmp:
            h.log(f"kept temp dir {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(text)
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(text)
    h.log(f"wrote {RESULTS_FILE.relative_to(h.REPO_DIR)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # children and temp dir are already cleaned up by then
        h.log("interrupted")
        sys.exit(130)

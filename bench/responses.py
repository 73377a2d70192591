#!/usr/bin/env python3
"""/v1/responses vs /v1/chat/completions through aibroker, on the same fake upstream.

The fake upstream is bench/gateway.py's nginx (a canned chat completion). aibroker serves
/v1/responses by translating to the chat pipeline, so the difference between its two rows is
what the Responses translation (parse, render, store) costs. LiteLLM's /v1/responses, in front
of the same chat-only upstream, is the peer row (installed as bench/gateway.py installs it).

Targets: direct (nginx itself), aibroker chat, aibroker responses (store: true, the default:
one row written per response), aibroker responses store:false, litellm responses.
Run: python3 bench/responses.py [--duration 5] [--rounds 2] [--skip-install]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402
import gateway as g  # noqa: E402

RESULTS_FILE = h.BENCH_DIR / "results" / "responses.md"
CONCURRENCIES = (1, 64)
CHAT = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 50}
RESPONSES = {"input": "Say hello", "max_output_tokens": 50}


def _body(kind: str, model: str) -> dict:
    if kind == "chat":
        return {"model": model, **CHAT}
    body = {"model": model, **RESPONSES}
    if kind == "responses-nostore":
        body["store"] = False
    return body


class Row:
    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind = name, kind
        self.url, self.model, self.headers = "", "gpt-4o-mini", {}
        self.unavailable = ""
        self.runs: dict[int, list[h.WrkResult]] = {c: [] for c in CONCURRENCIES}

    def median(self, conc: int, attr: str) -> float:
        values = [getattr(r, attr) for r in self.runs[conc]]
        return statistics.median(values) if values else float("nan")

    def errors(self) -> int:
        return sum(r.errors for runs in self.runs.values() for r in runs)


def smoke(row: Row) -> None:
    status, text = h.post_json(row.url, _body(row.kind, row.model), row.headers)
    want = '"choices"' if row.kind == "chat" else '"output"'
    if status != 200 or want not in text:
        raise RuntimeError(f"smoke request got HTTP {status}: {text[:400]}")


def start_litellm(bench: g.Bench, t: g.Target) -> None:
    """LiteLLM as bench/gateway.py runs it, but with the upstream declared as a generic
    OpenAI-compatible chat server (`custom_openai/`): for `openai/` models LiteLLM forwards
    /v1/responses natively, which a chat-only upstream cannot answer; this way it takes its
    Responses -> chat bridge, the same translation aibroker does."""
    port = h.free_port()
    config = bench.tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: custom_openai/gpt-4o-mini\n"
        f"      api_base: http://127.0.0.1:{bench.upstream}/v1\n"
        "      api_key: sk-bench\n"
        "general_settings:\n"
        f"  master_key: {g.LITELLM_MASTER_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n")
    log_config = bench.tmp / "litellm-logging.json"
    log_config.write_text(json.dumps(g.QUIET_UVICORN_LOGGING))
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    env.pop("DATABASE_URL", None)
    argv = [str(h.LITELLM_VENV / "bin" / "litellm"), "--config", str(config), "--port", str(port),
            "--host", "127.0.0.1", "--num_workers", "1", "--log_config", str(log_config)]
    bench.start_and_wait(t.name, argv, f"http://127.0.0.1:{port}/health/liveliness", env, timeout=180)
    t.url = f"http://127.0.0.1:{port}/v1/chat/completions"
    t.headers = {"Authorization": f"Bearer {g.LITELLM_MASTER_KEY}"}


def setup(bench: g.Bench, rows: list[Row]) -> None:
    broker = g.Target("aibroker-1w")
    lite = g.Target("litellm")
    for row in rows:
        try:
            if row.name == "direct":
                bench.direct(broker_direct := g.Target("direct"))
                row.url = broker_direct.url
            elif row.name.startswith("aibroker"):
                if not broker.url:
                    bench.aibroker(broker)
                path = "/v1/chat/completions" if row.kind == "chat" else "/v1/responses"
                row.url, row.model, row.headers = broker.url.replace("/v1/chat/completions", path), broker.model, broker.headers
            else:
                if not lite.url:
                    start_litellm(bench, lite)
                row.url, row.headers = lite.url.replace("/v1/chat/completions", "/v1/responses"), lite.headers
            smoke(row)
        except Exception as exc:  # noqa: BLE001 - the row is reported as not measured, with why
            row.unavailable = str(exc).strip()
            h.log(f"{row.name}: unavailable: {row.unavailable[:300]}")


def measure(rows: list[Row], args: argparse.Namespace, tmp: Path) -> None:
    live = [r for r in rows if not r.unavailable]
    scripts = {r.name: h.wrk_script(tmp / f"{r.name}.lua", _body(r.kind, r.model), r.headers) for r in live}
    for r in live:  # warm-up: first requests pay imports, connections, caches
        h.run_wrk(r.url, scripts[r.name], 4, args.warmup)
    for rnd in range(args.rounds):  # alternate targets so drift hits all alike
        for r in live:
            for conc in CONCURRENCIES:
                res = h.run_wrk(r.url, scripts[r.name], conc, args.duration)
                r.runs[conc].append(res)
                h.log(f"round {rnd + 1} {r.name} c{conc}: {res.rps:,.0f} req/s, p50 {res.p50_ms:.2f} ms, errors {res.errors}")


def report(rows: list[Row], args: argparse.Namespace) -> str:
    by = {r.name: r for r in rows}
    direct = by["direct"]
    lines = [
        "# /v1/responses vs /v1/chat/completions (same fake upstream)",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; load average at start {args.load_at_start:.1f}; "
        f"{os.cpu_count()} CPUs shared by wrk, nginx and the gateway",
        f"- versions: {', '.join(f'{k} {v}' for k, v in g.versions(Path(args.aibroker_bin)).items())}",
        f"- wrk, {args.duration:.0f} s per run, median of {args.rounds} rounds; aibroker on SQLite, 1 worker, ledger on, "
        "`Cache-Control: no-store`; `+p50` is p50 minus direct's at the same concurrency",
        f"- command: `python3 bench/responses.py --duration {args.duration:.0f} --rounds {args.rounds}`",
        "- LiteLLM (pinned in requirements-litellm.txt, 1 worker, no database) sees the upstream as `custom_openai/`, so it "
        "bridges Responses to chat as aibroker does (as `openai/` it would forward /v1/responses to the chat-only upstream)",
        "",
        "| target | route | c1 req/s | c1 p50 ms | c1 +p50 ms | c64 req/s | c64 p50 ms | c64 +p50 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        route = "/v1/chat/completions" if r.kind == "chat" else "/v1/responses" + (" store:false" if r.kind == "responses-nostore" else "")
        if r.unavailable:
            lines.append(f"| {r.name} | {route} | not measured | | | | | | |")
            continue
        cells = []
        for conc in CONCURRENCIES:
            p50 = r.median(conc, "p50_ms")
            added = p50 - direct.median(conc, "p50_ms") if r is not direct else 0.0
            cells += [f"{r.median(conc, 'rps'):,.0f}", f"{p50:.2f}", f"{added:+.2f}" if r is not direct else "-"]
        lines.append(f"| {r.name} | {route} | {' | '.join(cells)} | {r.errors()} |")
    chat = by.get("aibroker-chat")
    if chat and not chat.unavailable:
        lines += ["", "| compared | c1 req/s ratio | c64 req/s ratio | c1 added p50 ms (vs chat) | c64 added p50 ms (vs chat) |",
                  "|---|---:|---:|---:|---:|"]
        for name in ("aibroker-responses", "aibroker-responses-nostore", "litellm-responses"):
            r = by.get(name)
            if r is None or r.unavailable:
                continue
            ratios = [r.median(c, "rps") / chat.median(c, "rps") for c in CONCURRENCIES]
            extra = [r.median(c, "p50_ms") - chat.median(c, "p50_ms") for c in CONCURRENCIES]
            lines.append(f"| {name} / aibroker-chat | {ratios[0]:.2f}x | {ratios[1]:.2f}x | {extra[0]:+.2f} | {extra[1]:+.2f} |")
    for r in rows:
        if r.unavailable:
            lines.append(f"\n- {r.name}: not measured: {r.unavailable[:400]}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM row")
    parser.add_argument("--skip-install", action="store_true")
    args = parser.parse_args()
    args.database_url, args.aibroker_bin, args.aibroker_plan = None, str(g.AIBROKER_BIN), "unlimited"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = [Row("direct", "chat"), Row("aibroker-chat", "chat"), Row("aibroker-responses", "responses"),
            Row("aibroker-responses-nostore", "responses-nostore"), Row("litellm-responses", "responses")]
    if not args.skip_install:
        h.ensure_apt({"nginx": "nginx-light", "wrk": "wrk"})
        if not args.no_litellm:
            try:
                h.ensure_litellm()
            except Exception as exc:  # noqa: BLE001 - the row says why it was not measured
                rows[-1].unavailable = f"LiteLLM could not be installed ({exc})"
    if args.no_litellm:
        rows[-1].unavailable = "--no-litellm"
    args.load_at_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="aibroker-responses-bench-"))
    try:
        with h.Processes() as procs:
            bench = g.Bench(args, procs, tmp)
            bench.upstream = h.start_fake_upstream(procs, tmp)
            setup(bench, [r for r in rows if not r.unavailable])
            measure(rows, args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(rows, args)
    print(text)
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        h.log("interrupted")
        sys.exit(130)

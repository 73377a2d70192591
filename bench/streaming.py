#!/usr/bin/env python3
"""Streamed chat completions (SSE, 50 chunks per response): aibroker vs LiteLLM.

Same fake upstream as bench/gateway.py (nginx), on its /stream/v1 route. Two measures:
time to first byte (curl's time_starttransfer over sequential requests: what a user
waiting for the first token feels) and throughput of whole streams (wrk at 1 and 64
connections). Run: python3 bench/streaming.py [--requests 200] [--duration 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402
import gateway as g  # noqa: E402

TARGETS = ["direct", "aibroker-1w", "litellm"]
RESULTS_FILE = h.BENCH_DIR / "results" / "streaming.md"


def stream_body(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 50, "stream": True}


class StreamBench(g.Bench):
    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.base_path = "/stream/v1"

    def smoke_test(self, t: g.Target) -> None:
        status, text = h.post_json(t.url, stream_body(t.model), t.headers)
        if status != 200 or "data: [DONE]" not in text:
            raise RuntimeError(f"smoke stream got HTTP {status}: {text[:300]}")


def ttfb_ms(t: g.Target, requests: int) -> list[float]:
    """Sequential requests; curl times the first byte of the body, not its own start-up."""
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{time_starttransfer}\\n", "-X", "POST", t.url,
            "-H", "content-type: application/json", "-d", json.dumps(stream_body(t.model))]
    for name, value in t.headers.items():
        args += ["-H", f"{name}: {value}"]
    out = []
    for _ in range(requests):
        result = subprocess.run(args, capture_output=True, text=True, timeout=30)
        if result.returncode == 0 and result.stdout.strip():
            out.append(float(result.stdout.strip()) * 1000)
    return out


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="sequential requests for time to first byte")
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--skip-install", action="store_true")
    args = parser.parse_args()
    args.targets = args.targets.split(",")
    args.database_url, args.aibroker_bin, args.aibroker_plan = None, str(g.AIBROKER_BIN), "unlimited"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.skip_install:
        g.install(args.targets)
    tmp = Path(tempfile.mkdtemp(prefix="aibroker-stream-bench-"))
    targets = [g.Target(name) for name in args.targets]
    rows = []
    try:
        with h.Processes() as procs:
            bench = StreamBench(args, procs, tmp)
            bench.upstream = h.start_fake_upstream(procs, tmp)
            for t in targets:
                h.log(f"starting {t.name}")
                bench.setup(t)
            live = [t for t in targets if not t.unavailable]
            scripts = {t.name: h.wrk_script(tmp / f"{t.name}.lua", stream_body(t.model), t.headers) for t in live}
            ttfb = {t.name: [] for t in live}
            rps = {(t.name, c): [] for t in live for c in (1, 64)}
            for rnd in range(args.rounds):  # alternate targets so drift hits all alike
                for t in live:
                    ttfb[t.name] += ttfb_ms(t, args.requests // args.rounds)
                    for conc in (1, 64):
                        res = h.run_wrk(t.url, scripts[t.name], conc, args.duration)
                        rps[(t.name, conc)].append(res.rps)
                        h.log(f"round {rnd + 1} {t.name} c{conc}: {res.rps:,.0f} streams/s, errors {res.errors}")
            for t in live:
                rows.append((t.name, statistics.median(ttfb[t.name]), percentile(ttfb[t.name], 0.99),
                             statistics.median(rps[(t.name, 1)]), statistics.median(rps[(t.name, 64)])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(rows, targets, args)
    print(text)
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(text)
    return 0


def report(rows: list[tuple], targets: list[g.Target], args: argparse.Namespace) -> str:
    by = {r[0]: r for r in rows}
    lines = [
        "# Streaming benchmark: SSE chat completions, 50 chunks per response",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; load average at start {os.getloadavg()[0]:.1f}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in g.versions(Path(args.aibroker_bin)).items())}",
        f"- TTFB: curl time_starttransfer over {args.requests} sequential requests; throughput: wrk, median of {args.rounds} rounds",
        "",
        "| target | TTFB p50 ms | TTFB p99 ms | streams/s c1 | streams/s c64 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, p50, p99, c1, c64 in rows:
        lines.append(f"| {name} | {p50:.2f} | {p99:.2f} | {c1:,.0f} | {c64:,.0f} |")
    if "aibroker-1w" in by and "litellm" in by:
        a, lite = by["aibroker-1w"], by["litellm"]
        lines += ["", "| aibroker vs LiteLLM | TTFB p50 (lower is better) | streams/s c1 | streams/s c64 |", "|---|---:|---:|---:|",
                  f"| ratio | {a[1] / lite[1]:.2f}x | {a[3] / lite[3]:.2f}x | {a[4] / lite[4]:.2f}x |"]
    for t in targets:
        if t.unavailable:
            lines.append(f"\n- {t.name}: unavailable: {t.unavailable[:300]}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

"""The report of bench/gateway.py: the table, the throughput ratios and the round-to-round
spread, rendered as Markdown."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

import _harness as h

if TYPE_CHECKING:
    from gateway import Target

CONCURRENCIES = (1, 64)


def median(results: list, attr: str) -> float | None:
    return statistics.median(getattr(r, attr) for r in results) if results else None


def fmt(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+,.{digits}f}" if sign else f"{value:,.{digits}f}"


def versions(aibroker_bin: Path) -> dict[str, str]:
    v = {
        "python": platform.python_version(),
        "nginx": h.tool_version(["nginx", "-v"], r"nginx/(\S+)"),
        "wrk": h.tool_version(["wrk", "-v"], r"wrk (\S+)"),
        "litellm": h.tool_version([str(h.LITELLM_VENV / "bin" / "python"), "-c",
                                   "import importlib.metadata as m; print(m.version('litellm'))"], r"(\S+)"),
        "portkey": _portkey_version(),
        "node": h.tool_version(["node", "--version"], r"v(\S+)"),
    }
    aibroker_python = aibroker_bin.parent / "python"
    if aibroker_python.exists():
        v["aibroker"] = h.tool_version([str(aibroker_python), "-c",
                                        "import importlib.metadata as m; print(m.version('aibroker'))"], r"(\S+)")
    return v


def _portkey_version() -> str:
    try:
        return json.loads((h.PORTKEY_ENTRY.parents[1] / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "?"


def report(targets: list[Target], args: argparse.Namespace) -> str:
    by_name = {t.name: t for t in targets}
    direct = by_name.get("direct")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    ver = ", ".join(f"{k} {v}" for k, v in versions(Path(args.aibroker_bin)).items())
    db = "postgresql" if args.database_url else "sqlite"
    lines = [
        "# Gateway benchmark: non-streaming chat completions",
        "",
        f"- date: {now}",
        f"- host: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"load average at start {args.load_at_start:.1f}",
        f"- versions: {ver}",
        f"- method: wrk, {args.rounds} alternating rounds x {args.duration:g}s per target and concurrency, "
        f"median over rounds; wrk threads 1 (c1) / 2 (c64); aibroker database: {db}",
        "",
        "| target | c1 req/s | c1 p50 ms | c1 p99 ms | c1 +p50 ms | c64 req/s | c64 p50 ms | c64 p99 ms "
        "| c64 +p50 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in targets:
        if t.unavailable:
            lines.append(f"| {t.name} | unavailable | | | | | | | | |")
            continue
        cells = [t.name]
        for conc in CONCURRENCIES:
            runs = t.runs[conc]
            p50 = median(runs, "p50_ms")
            base = median(direct.runs[conc], "p50_ms") if direct and not direct.unavailable else None
            added = p50 - base if p50 is not None and base is not None and t is not direct else None
            cells += [fmt(median(runs, "rps"), 0), fmt(p50), fmt(median(runs, "p99_ms")), fmt(added, sign=True)]
        cells.append(error_cell(t))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ratio_table(targets)
    lines += spread_table(targets)
    failing = [t for t in targets if t.error_sample]
    if failing:
        lines += ["", "Targets with errors (their numbers time error responses, not completions):", ""]
        lines += [f"- {t.name}: {t.error_sample}" for t in failing]
    missing = [t for t in targets if t.unavailable]
    if missing:
        lines += ["", "Unavailable targets:", ""]
        lines += [f"- {t.name}: {t.unavailable.splitlines()[0][:300]}" for t in missing]
    return "\n".join(lines) + "\n"


def error_cell(t: Target) -> str:
    runs = [r for c in CONCURRENCIES for r in t.runs[c]]
    errors, total = sum(r.errors for r in runs), sum(r.requests for r in runs)
    return f"**{errors} ({errors / total:.0%})**" if errors and total else str(errors)


def spread_table(targets: list[Target]) -> list[str]:
    """How much throughput moved between rounds: (max - min) / median of req/s."""
    live = [t for t in targets if not t.unavailable and any(len(t.runs[c]) > 1 for c in CONCURRENCIES)]
    if not live:
        return []
    lines = ["", "Round-to-round spread of req/s ((max - min) / median):", "",
             "| target | " + " | ".join(f"c{c}" for c in CONCURRENCIES) + " |", "|---|" + "---:|" * len(CONCURRENCIES)]
    for t in live:
        cells = []
        for c in CONCURRENCIES:
            rps = [r.rps for r in t.runs[c]]
            mid = statistics.median(rps) if rps else 0
            cells.append(f"{(max(rps) - min(rps)) / mid:.1%}" if len(rps) > 1 and mid else "–")
        lines.append(f"| {t.name} | " + " | ".join(cells) + " |")
    return lines


def ratio_table(targets: list[Target]) -> list[str]:
    """aibroker throughput divided by each competitor's (>1 means aibroker is faster)."""
    by_name = {t.name: t for t in targets if not t.unavailable}
    ours = [t for t in by_name.values() if t.name.startswith("aibroker")]
    rivals = [by_name[n] for n in ("portkey", "litellm") if n in by_name]
    if not ours or not rivals:
        return []
    head = [f"{r.name} c{c}" for r in rivals for c in CONCURRENCIES]
    lines = ["", "Throughput ratio (aibroker req/s / competitor req/s):", "",
             "| target | " + " | ".join(f"vs {x}" for x in head) + " |",
             "|---|" + "---:|" * len(head)]
    for t in ours:
        cells = []
        for r in rivals:
            for c in CONCURRENCIES:
                mine, theirs = median(t.runs[c], "rps"), median(r.runs[c], "rps")
                cells.append(f"{mine / theirs:.2f}x" if mine and theirs else "–")
        lines.append(f"| {t.name} | " + " | ".join(cells) + " |")
    return lines



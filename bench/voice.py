"""Voice benchmark: N concurrent realtime sessions, each streaming 20 ms audio frames in real
time through one `aibroker serve` process to a fake OpenAI Realtime upstream (echo mode: each
frame comes back as one output_audio.delta), against the same clients on the fake directly.

    .venv/bin/python bench/voice.py [--sessions 10,50,100] [--seconds 3]

Per frame: the time from sending its input_audio_buffer.append to receiving its echo (the
frame's index rides in its first 4 bytes). Reported: p50/p99 direct and through the broker,
the added latency and the ratio, the share of frames later than 20 ms (one frame period)
through the broker, and the broker's CPU seconds per session-minute (utime+stime of the serve
process over the run, divided by sessions x minutes). The fake runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from _harness import Processes, free_port, log_tail, post_json, wait_http  # noqa: E402

AIBROKER = BENCH.parent / ".venv" / "bin" / "aibroker"
ADMIN = "bench-admin-token"
FRAME_SECONDS = 0.02
FRAME_BYTES = 960  # 20 ms of pcm16 at 24 kHz
FAKE = """
import threading
from tests.fakes.openai_realtime import FakeOpenAIRealtime
fake = FakeOpenAIRealtime(api_key="sk-bench")
fake.start()
fake.faults.echo = True
print("ready", fake.base_url, flush=True)
threading.Event().wait()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="10,50,100", help="Comma list of concurrent session counts.")
    parser.add_argument("--seconds", type=float, default=3.0, help="Seconds of audio each session streams.")
    args = parser.parse_args()
    counts = [int(n) for n in args.sessions.split(",") if n.strip()]
    with Processes() as procs, tempfile.TemporaryDirectory() as tmp:
        rows = _bench(procs, Path(tmp), counts, args.seconds)
    print(f"\nvoice benchmark (one broker process, SQLite, fake OpenAI Realtime echo upstream, {args.seconds:g} s of 20 ms frames per session)\n")
    print("| sessions | direct p50 ms | direct p99 ms | broker p50 ms | broker p99 ms | added p50 ms | added p99 ms | ratio p50 | frames > 20 ms | broker CPU s / session-min |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    late_at = None
    for n, direct, broker, late, cpu in rows:
        d50, d99, b50, b99 = _pct(direct, 50), _pct(direct, 99), _pct(broker, 50), _pct(broker, 99)
        print(f"| {n} | {d50:.2f} | {d99:.2f} | {b50:.2f} | {b99:.2f} | {b50 - d50:.2f} | {b99 - d99:.2f} | "
              f"{b50 / d50 if d50 else float('nan'):.2f} | {late:.1%} | {cpu:.3f} |")
        if late_at is None and b99 > 20.0:
            late_at = n
    print(f"\nframes start arriving late (broker p99 > 20 ms) at: {late_at if late_at is not None else f'not within {max(counts)} sessions'}")


def _pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def _bench(procs: Processes, tmp: Path, counts: list[int], seconds: float) -> list[tuple[int, list[float], list[float], float, float]]:
    fake = procs.start("fake-realtime", [sys.executable, "-c", FAKE], tmp / "fake.log", cwd=BENCH.parent)
    fake_url = _ready_line(tmp / "fake.log", fake)
    url = f"sqlite+aiosqlite:///{tmp}/bench.db"
    from aibroker.migrations.runner import upgrade

    upgrade(url)
    port = free_port()
    env = {**os.environ, "AIBROKER_DATABASE_URL": url, "AIBROKER_ADMIN_TOKEN": ADMIN, "AIBROKER_LOG_LEVEL": "warning",
           "AIBROKER_LIMITS_ENABLED": "false", "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": fake_url,
           "AIBROKER_VOICE_MAX_CONCURRENT_SESSIONS": "10000"}
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        env.pop(name, None)
    broker = procs.start("serve", [str(AIBROKER), "serve", "--port", str(port)], tmp / "serve.log", env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", broker)
    except RuntimeError as exc:
        raise SystemExit(f"aibroker serve: {exc}\n{log_tail(tmp / 'serve.log')}") from exc
    status, text = post_json(base + "/api/admin/organizations", {"name": "Bench", "credit": "100000"}, {"authorization": f"Bearer {ADMIN}"})
    assert status == 201, text
    key = json.loads(text)["api_key"]
    direct_url = fake_url.replace("http://", "ws://") + "/realtime?model=gpt-realtime"
    broker_url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
    rows = []
    for n in counts:
        direct = asyncio.run(_run(direct_url, "sk-bench", n, seconds))
        cpu_before = _cpu(broker.pid)
        through = asyncio.run(_run(broker_url, key, n, seconds))
        cpu = (_cpu(broker.pid) - cpu_before) / (n * seconds / 60)
        late = sum(1 for v in through if v > 20.0) / max(1, len(through))
        rows.append((n, direct, through, late, cpu))
    return rows


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(url: str, key: str, sessions: int, seconds: float) -> list[float]:
    import websockets

    frames = int(seconds / FRAME_SECONDS)

    async def one(index: int) -> list[float]:
        sent: dict[int, float] = {}
        latencies: list[float] = []
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}, max_size=None,
                                      compression=None, open_timeout=60) as ws:
            while json.loads(await ws.recv())["type"] != "session.created":
                pass
            await asyncio.sleep(index % 50 * FRAME_SECONDS / 50)  # spread the sessions' frame phases

            async def reader() -> None:
                while len(latencies) < frames:
                    event = json.loads(await ws.recv())
                    if event["type"] == "response.output_audio.delta":
                        seq = struct.unpack_from("<I", base64.b64decode(event["delta"][:8]))[0]
                        latencies.append((time.perf_counter() - sent.pop(seq)) * 1000)

            task = asyncio.create_task(reader())
            start = time.perf_counter()
            for seq in range(frames):
                frame = struct.pack("<I", seq) + bytes(FRAME_BYTES - 4)
                sent[seq] = time.perf_counter()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(frame).decode()}))
                delay = start + (seq + 1) * FRAME_SECONDS - time.perf_counter()  # real time: one frame per 20 ms
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.wait_for(task, 30)
        return latencies

    results = await asyncio.gather(*(one(i) for i in range(sessions)))
    return [v for r in results for v in r]


def _ready_line(path: Path, proc, timeout: float = 30.0) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("ready "):
                return line.split()[1]
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the fake realtime server did not start\n{log_tail(path)}")
        time.sleep(0.05)


if __name__ == "__main__":
    main()

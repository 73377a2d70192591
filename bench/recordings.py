"""Recordings benchmark: chunked upload throughput against writing the same bytes straight to
the same disk / the same S3 server, the server's peak memory while a large recording is
uploaded and finalized, and processing time per hour of audio with the mock provider.

    .venv/bin/python bench/recordings.py [--mb 128] [--chunk-mb 8] [--audio-minutes 10]
    .venv/bin/python bench/recordings.py --mb 1024      # the 1 GB memory run (takes minutes)

Everything runs as deployed: `aibroker serve` processes (one on the local disk, one on S3)
on a temp SQLite database, moto's standalone S3 server as its own process. The upload is a
valid WAV (16 kHz mono, streamed from a generator: this process never holds it either),
sent as raw chunks over HTTP one after another, then finalized (assembled by the store,
streamed, and probed). Peak memory is the server's VmHWM (peak resident set) from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import struct
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from _harness import Processes, free_port, log, log_tail, post_json, wait_http  # noqa: E402

AIBROKER = BENCH.parent / ".venv" / "bin" / "aibroker"
ADMIN = "bench-admin-token"
MB = 1024 * 1024
RATE = 16_000


def wav_stream(total: int, piece: int) -> Iterator[bytes]:
    """A `total`-byte WAV (header + a 440 Hz tone), in pieces of `piece` bytes."""
    import numpy as np

    data = total - 44
    header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16)
    header += b"data" + struct.pack("<I", data)
    period = (np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE) * 6000).astype("<i2").tobytes()  # one second
    tone = period * max(1, (piece // len(period)) + 2)
    buffer, sent = bytearray(header), 0
    while sent < total:
        while len(buffer) < piece and sent + len(buffer) < total:
            buffer += tone[: min(len(tone), total - sent - len(buffer))]
        out = bytes(buffer[: min(piece, total - sent)])
        del buffer[: len(out)]
        sent += len(out)
        yield out


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def request(method: str, url: str, key: str, body: bytes | None = None, headers: dict | None = None) -> dict:
    req = urllib.request.Request(url, data=body, method=method, headers={"authorization": f"Bearer {key}", **(headers or {})})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read() or b"{}")


def upload(base: str, key: str, total: int, chunk: int) -> tuple[float, float, str]:
    """(seconds for the chunks, seconds for finalize, recording id)."""
    rec = request("POST", base + "/api/recordings", key, json.dumps({"total_bytes": total}).encode(), {"content-type": "application/json"})
    started = time.perf_counter()
    for index, piece in enumerate(wav_stream(total, chunk)):
        request("POST", f"{base}/api/chunks/{rec['id']}", key, piece, {"x-chunk-index": str(index), "content-type": "application/octet-stream"})
    chunks = time.perf_counter() - started
    started = time.perf_counter()
    done = request("POST", f"{base}/api/finalize/{rec['id']}", key)
    assert done["status"] == "uploaded", done
    return chunks, time.perf_counter() - started, rec["id"]


def direct_disk(directory: Path, total: int, chunk: int) -> float:
    started = time.perf_counter()
    path = directory / "direct.wav"
    with path.open("wb") as out:
        for piece in wav_stream(total, chunk):
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    seconds = time.perf_counter() - started
    path.unlink()
    return seconds


def direct_s3(endpoint: str, bucket: str, total: int, chunk: int) -> float:
    from aibroker.storage.s3 import S3BlobStore

    store = S3BlobStore(bucket, endpoint_url=endpoint, access_key_id="bench", secret_access_key="bench")

    async def put() -> float:
        async def pieces():
            for piece in wav_stream(total, chunk):
                yield piece

        started = time.perf_counter()
        await store.put("direct/object", pieces())
        seconds = time.perf_counter() - started
        await store.delete("direct/object")
        await store.aclose()
        return seconds

    return asyncio.run(put())


def serve(procs: Processes, tmp: Path, name: str, env: dict) -> tuple[str, object, str]:
    port = free_port()
    proc = procs.start(name, [str(AIBROKER), "serve", "--port", str(port)], tmp / f"{name}.log", env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", proc)
    except RuntimeError as exc:
        raise SystemExit(f"{name}: {exc}\n{log_tail(tmp / f'{name}.log')}") from exc
    status, text = post_json(base + "/api/admin/organizations", {"name": name, "credit": "1000", "plan": "unlimited"},
                             {"authorization": f"Bearer {ADMIN}"})
    assert status == 201, text
    return base, proc, json.loads(text)["api_key"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=128, help="Size of the uploaded recording (1024: the 1 GB memory run).")
    parser.add_argument("--chunk-mb", type=int, default=8, help="Chunk size (AIBROKER_MAX_CHUNK_BYTES).")
    parser.add_argument("--audio-minutes", type=float, default=10, help="Audio processed with the mock provider.")
    args = parser.parse_args()
    total, chunk = args.mb * MB, args.chunk_mb * MB
    rows: list[tuple[str, str]] = []
    with Processes() as procs, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        moto_port = free_port()
        moto = procs.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)], tmp / "moto.log")
        endpoint = f"http://127.0.0.1:{moto_port}"
        wait_http(endpoint + "/moto-api/", moto, want_ok=False)
        import boto3

        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench",
                     region_name="us-east-1").create_bucket(Bucket="bench")
        base_env = {**os.environ, "AIBROKER_ADMIN_TOKEN": ADMIN, "AIBROKER_LOG_LEVEL": "warning", "CRON_SECRET": "bench-cron",
                    "AIBROKER_MAX_CHUNK_BYTES": str(chunk), "AIBROKER_LIMITS_ENABLED": "false",
                    "AIBROKER_RECORDINGS_TRANSCRIPTION_MODEL": "mock/mock-transcribe", "AIBROKER_RECORDINGS_ANALYSIS_MODEL": "mock/mock-chat"}
        for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
            base_env.pop(name, None)
        results = {}
        for backend in ("local", "s3"):
            env = {**base_env, "AIBROKER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/{backend}.db",
                   "AIBROKER_STORAGE_DIR": str(tmp / "blobs"), "AIBROKER_STORAGE_BACKEND": backend,
                   "AIBROKER_S3_BUCKET": "bench", "AIBROKER_S3_ENDPOINT_URL": endpoint,
                   "AIBROKER_S3_ACCESS_KEY_ID": "bench", "AIBROKER_S3_SECRET_ACCESS_KEY": "bench"}
            from aibroker.migrations.runner import upgrade

            upgrade(env["AIBROKER_DATABASE_URL"])
            base, proc, key = serve(procs, tmp, f"serve-{backend}", env)
            idle = rss_mb(proc.pid)
            log(f"{backend}: uploading {args.mb} MB in {args.chunk_mb} MB chunks")
            chunks, finalize, rec_id = upload(base, key, total, chunk)
            peak = peak_rss_mb(proc.pid)
            direct = direct_disk(tmp, total, chunk) if backend == "local" else direct_s3(endpoint, "bench", total, chunk)
            results[backend] = (chunks, finalize, direct, idle, peak)
            if backend == "local":
                results["process"] = process_audio(base, key, args.audio_minutes)
            procs.stop(proc)
        for backend, target in (("local", "the same disk"), ("s3", "the same S3 server (moto)")):
            chunks, finalize, direct, idle, peak = results[backend]
            broker_mbs, direct_mbs = args.mb / chunks, args.mb / direct
            rows.append((f"{backend}: chunked upload via the broker", f"{broker_mbs:.1f} MB/s"))
            rows.append((f"{backend}: straight to {target}", f"{direct_mbs:.1f} MB/s"))
            rows.append((f"{backend}: ratio broker / straight", f"{broker_mbs / direct_mbs:.2f}"))
            rows.append((f"{backend}: finalize (assemble + sha256 + probe) {args.mb} MB", f"{finalize:.2f} s"))
            rows.append((f"{backend}: server RSS idle -> peak during upload+finalize", f"{idle:.0f} -> {peak:.0f} MB"))
        seconds, minutes = results["process"]
        rows.append((f"mock processing of {minutes:g} min of audio (decode, 10-min segments, analysis)", f"{seconds:.2f} s"))
        rows.append(("mock processing time per hour of audio", f"{seconds * 60 / minutes:.1f} s"))
    print(f"\nrecordings benchmark ({args.mb} MB recording, {args.chunk_mb} MB chunks, SQLite; a shared, loaded 2-core machine)\n")
    print(f"| {'measure':<72} | {'value':>16} |")
    print(f"|{'-' * 74}|{'-' * 17}:|")
    for name, value in rows:
        print(f"| {name:<72} | {value:>16} |")


def process_audio(base: str, key: str, minutes: float) -> tuple[float, float]:
    total = int(minutes * 60 * RATE * 2) + 44
    body = b"".join(wav_stream(total, MB))
    boundary = "benchboundary" + hashlib.sha256(body[:64]).hexdigest()[:8]
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
    rec = request("POST", base + "/api/upload", key, form, {"content-type": f"multipart/form-data; boundary={boundary}"})
    started = time.perf_counter()
    outcome = request("POST", base + "/api/jobs/process", ADMIN, json.dumps({"max_jobs": 5}).encode(), {"content-type": "application/json"})
    seconds = time.perf_counter() - started
    status = request("GET", f"{base}/api/status/{rec['id']}", key)
    assert status["status"] == "analyzed", (status, outcome)
    return seconds, minutes


if __name__ == "__main__":
    main()

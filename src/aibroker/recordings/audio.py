"""Audio with PyAV: probe what was uploaded, and decode it into fixed-length segments of
16 kHz mono PCM, each written as a small WAV for the transcription call.

PyAV reads through `BlobFile`, a seekable file over the blob store (ranged reads, one
buffer), so neither probing nor decoding copies the recording into memory or onto disk.
PyAV is synchronous: it runs in a thread, and BlobFile hands each read back to the event
loop that owns the store's client."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from aibroker.storage.base import BlobStore

SAMPLE_RATE = 16_000  # what speech models are trained on; WAV at 16 kHz mono is 32 kB/s
READ_BUFFER = 1024 * 1024
# What browsers (MediaRecorder) and phones record: container -> codecs accepted in it.
ACCEPTED: dict[str, tuple[str, frozenset[str]]] = {
    "wav": ("audio/wav", frozenset({"pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_u8", "pcm_mulaw", "pcm_alaw"})),
    "mp3": ("audio/mpeg", frozenset({"mp3", "mp3float"})),
    "mov,mp4,m4a,3gp,3g2,mj2": ("audio/mp4", frozenset({"aac"})),
    "ogg": ("audio/ogg", frozenset({"opus", "vorbis"})),
    "matroska,webm": ("audio/webm", frozenset({"opus", "vorbis"})),
}
TRUNCATED_SHARE = 0.9  # decoding yielded less than this share of the declared duration


class MediaProblem(Exception):
    """The bytes are not audio we accept (`unsupported_media`) or do not decode (`corrupt_media`,
    `truncated_media`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Probe:
    media_type: str
    codec: str
    duration_seconds: float | None  # None: the container does not say (MediaRecorder's WebM)
    sample_rate: int
    channels: int


class BlobFile(io.RawIOBase):
    """A read-only, seekable file over one stored object, for PyAV running in a thread."""

    def __init__(self, store: BlobStore, key: str, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self._store, self._key, self._size, self._loop = store, key, size, loop
        self._pos = 0
        self._buf_start, self._buf = 0, b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _fetch(self, start: int, end: int) -> bytes:
        async def read() -> bytes:
            pieces = [piece async for piece in self._store.open(self._key, start=start, end=end)]
            return b"".join(pieces)

        return asyncio.run_coroutine_threadsafe(read(), self._loop).result()

    def readinto(self, target: Any) -> int:
        want = len(target)
        if self._pos >= self._size or want == 0:
            return 0
        inside = self._buf_start <= self._pos < self._buf_start + len(self._buf)
        if not inside:
            self._buf_start = self._pos
            self._buf = self._fetch(self._pos, min(self._size, self._pos + max(want, READ_BUFFER)))
            if not self._buf:
                return 0
        offset = self._pos - self._buf_start
        data = self._buf[offset: offset + want]
        target[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _open(source: Any) -> Any:
    try:
        return av.open(source, mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise MediaProblem("unsupported_media", "The upload is not an audio file this service reads "
                           "(WAV, MP3, M4A/AAC, OGG/Opus or WebM/Opus).") from exc


def probe(source: Any) -> Probe:
    """The container and codec, checked against what browsers and phones record."""
    container = _open(source)
    try:
        accepted = ACCEPTED.get(container.format.name)
        streams = list(container.streams.audio)
        if accepted is None or not streams:
            raise MediaProblem("unsupported_media", f"'{container.format.name}' with no accepted audio stream: "
                               "send WAV, MP3, M4A/AAC, OGG/Opus or WebM/Opus.")
        stream = streams[0]
        codec = stream.codec_context.name
        if codec not in accepted[1]:
            raise MediaProblem("unsupported_media", f"The audio codec '{codec}' is not accepted in {accepted[0]}.")
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        return Probe(accepted[0], codec, duration if duration and duration > 0 else None,
                     int(stream.codec_context.sample_rate or 0), int(stream.codec_context.channels or 0))
    finally:
        container.close()


def pcm_chunks(source: Any) -> Iterator[np.ndarray]:
    """The whole audio as 16 kHz mono int16 arrays, in decode order."""
    container = _open(source)
    try:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)
        except av.error.FFmpegError as exc:
            raise MediaProblem("corrupt_media", f"The audio does not decode: {exc}") from exc
    finally:
        container.close()


def decoded_samples(source: Any, declared_seconds: float | None) -> int:
    """Decode everything once (nothing is billed before this passes): the exact sample count
    at 16 kHz. Corrupt or truncated audio fails here with its reason."""
    total = sum(len(chunk) for chunk in pcm_chunks(source))
    if total == 0:
        raise MediaProblem("corrupt_media", "The audio decodes to no samples.")
    if declared_seconds and total < declared_seconds * SAMPLE_RATE * TRUNCATED_SHARE:
        raise MediaProblem("truncated_media", f"The file declares {declared_seconds:.1f} s of audio but only "
                           f"{total / SAMPLE_RATE:.1f} s decode: it is truncated.")
    return total


def segment_bounds(samples: int, segment_seconds: int) -> list[tuple[int, int]]:
    """[start, end) sample ranges of the segments (the last may be short)."""
    step = segment_seconds * SAMPLE_RATE
    return [(start, min(samples, start + step)) for start in range(0, samples, step)]


def segments_from(source: Any, bounds: list[tuple[int, int]], first: int) -> Iterator[tuple[int, bytes]]:
    """(index, WAV bytes) for segments `first` onward; the earlier ones are decoded and dropped."""
    index, held, position = first, [], 0
    if first >= len(bounds):
        return
    for chunk in pcm_chunks(source):
        start, end = position, position + len(chunk)
        position = end
        while index < len(bounds) and chunk is not None:
            seg_start, seg_end = bounds[index]
            lo, hi = max(start, seg_start), min(end, seg_end)
            if hi > lo:
                held.append(chunk[lo - start: hi - start])
            if end >= seg_end:
                yield index, wav_bytes(np.concatenate(held) if held else np.zeros(0, dtype=np.int16))
                held, index = [], index + 1
            else:
                break
    if index < len(bounds) and held:
        yield index, wav_bytes(np.concatenate(held))


def wav_bytes(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()

"""Real audio for the tests, encoded with PyAV from a numpy tone: WAV, MP3, M4A/AAC,
OGG/Opus and WebM/Opus (what browsers and phones record)."""

from __future__ import annotations

import io

import av
import numpy as np

# name -> (container format, codec, sample rate, file extension, MIME type)
FORMATS: dict[str, tuple[str, str, int, str, str]] = {
    "wav": ("wav", "pcm_s16le", 16_000, "wav", "audio/wav"),
    "mp3": ("mp3", "libmp3lame", 44_100, "mp3", "audio/mpeg"),
    "m4a": ("ipod", "aac", 44_100, "m4a", "audio/mp4"),
    "ogg": ("ogg", "libopus", 48_000, "ogg", "audio/ogg"),
    "webm": ("webm", "libopus", 48_000, "webm", "audio/webm"),
}


def encode(name: str, seconds: float, *, frequency: float = 440.0) -> bytes:
    container_format, codec, rate, _, _ = FORMATS[name]
    out = io.BytesIO()
    container = av.open(out, mode="w", format=container_format)
    stream = container.add_stream(codec, rate=rate, layout="mono")
    total = int(seconds * rate)
    t = np.arange(total) / rate
    tone = (np.sin(2 * np.pi * frequency * t) * 8000).astype(np.int16)
    frame_size = stream.codec_context.frame_size or 1024
    for start in range(0, total, frame_size):
        piece = tone[start:start + frame_size]
        frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return out.getvalue()

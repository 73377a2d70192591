"""PCM16 audio helpers: durations, the mock's tone, and resampling (PyAV's libswresample).

The client side is always OpenAI Realtime's pcm16: 16-bit signed little-endian mono at
24 kHz. Gemini Live takes 16 kHz in and answers 24 kHz, so only the input is resampled."""

from __future__ import annotations

import av
import numpy as np

CLIENT_RATE = 24_000  # OpenAI Realtime pcm16 (the only PCM rate it has)
GEMINI_INPUT_RATE = 16_000
GEMINI_OUTPUT_RATE = 24_000
SAMPLE_BYTES = 2


def pcm_ms(nbytes: int, rate: int = CLIENT_RATE) -> float:
    """How long `nbytes` of PCM16 mono audio at `rate` plays, in milliseconds."""
    return nbytes / SAMPLE_BYTES / rate * 1000


def tone(seconds: float, frequency: float = 440.0, rate: int = CLIENT_RATE, amplitude: int = 6000) -> bytes:
    """A sine tone as PCM16 mono (the mock realtime model's voice)."""
    samples = np.arange(int(seconds * rate), dtype=np.float64)
    wave = np.sin(2 * np.pi * frequency * samples / rate) * amplitude
    return wave.astype("<i2").tobytes()


class Resampler:
    """A streaming PCM16 mono resampler: feed chunks, get chunks (libswresample keeps the
    filter state between them, so chunk edges do not click)."""

    def __init__(self, source_rate: int, target_rate: int) -> None:
        self.source_rate = source_rate
        self.target_rate = target_rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=target_rate)

    def feed(self, pcm: bytes) -> bytes:
        if not pcm:
            return b""
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % SAMPLE_BYTES], dtype="<i2")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.source_rate
        return b"".join(out.to_ndarray().tobytes() for out in self._resampler.resample(frame))

    def flush(self) -> bytes:
        """What the filter still holds (end of the input stream)."""
        return b"".join(out.to_ndarray().tobytes() for out in self._resampler.resample(None))

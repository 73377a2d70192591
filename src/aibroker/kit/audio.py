"""Audio facts the broker can know without decoding: a WAV file's exact duration."""

from __future__ import annotations

import io
import struct
import wave


def wav_seconds(content: bytes) -> float | None:
    """The duration of a WAV (PCM) file from its header, or None if it is not a readable WAV."""
    try:
        with wave.open(io.BytesIO(content)) as reader:
            rate = reader.getframerate()
            return reader.getnframes() / rate if rate else None
    except (wave.Error, EOFError, struct.error):
        return None

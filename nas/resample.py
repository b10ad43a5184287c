"""The one resampler: soxr's very-high-quality mode (linear phase, passband to 0.95 * Nyquist)."""

from __future__ import annotations

import numpy as np
import soxr


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, rate, target, quality="VHQ").astype(np.float32)

"""The one resampler: soxr's very-high-quality mode (linear phase, passband to 0.95 * Nyquist)."""

from __future__ import annotations

import numpy as np
import soxr

# Below any source's resolution (a 24-bit LSB is 1.2e-7) and -140 dBFS. The filter's tails
# leave values down to 1e-13 across a source's digital silence (0.8% of the demo violin's
# samples), and ddsp's log-magnitude loss counts each such bin at 15-25 nats, so the model
# was scored on reproducing rounding dust: 1.0 of the demo's eval loss of 6.4.
DUST = 1e-7


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`audio` at `target` Hz; what the filter leaves below DUST is set to 0, so silence stays silent."""
    if rate == target:
        return audio.astype(np.float32, copy=False)
    out = soxr.resample(audio, rate, target, quality="VHQ").astype(np.float32)
    out[np.abs(out) < DUST] = 0.0
    return out

"""The resampler of datasets and analysis: soxr's very-high-quality mode (linear phase,
passband to 0.95 * Nyquist). What nas plays converts with `nas.play.rates`, whose 4 ms
each way live play can afford, and which gives a clip the same offline as streamed."""

from __future__ import annotations

import numpy as np
import soxr

# Below any source's resolution (a 24-bit LSB is 1.2e-7) and -140 dBFS. For some 45 ms
# after a note that ends in digital silence (and before the next), soxr's filter leaves
# values of 1e-16 and so on: 0.8% of the demo violin's samples. ddsp's log-magnitude loss
# counts their bins at 15-25 nats each: 1.0 of the demo model's eval loss of 6.42.
DUST = 1e-7


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`audio` at `target` Hz; what the filter leaves below DUST is set to 0, so silence stays silent."""
    if rate == target:
        return audio.astype(np.float32, copy=False)
    out = soxr.resample(audio, rate, target, quality="VHQ").astype(np.float32)
    out[np.abs(out) < DUST] = 0.0
    return out

"""SwiftF0 (Nieradzik, 2025; MIT, the `swift-f0` package's ONNX network) on ddsp's frame grid.

SwiftF0 gives a pitch and a 0-1 confidence (voiced at >= 0.5, as CREPE's `CLEAR_PITCH`)
for every 256 samples at 16 kHz, frame i centred on sample i * 256: against the demos'
exact f0 its accuracy peaks at the same time shift as CREPE's centred frames
(benchmarks/pitch.py). Its pitch is never 0: unvoiced frames carry its best guess, a
continuous f0 as CREPE's is, so ddsp's synth never jumps to 0 Hz.
"""

from __future__ import annotations

import functools

import numpy as np

from . import SAMPLE_RATE

HOP = 256


@functools.cache
def detector():
    """One detector per process (building it allocates ONNX Runtime's thread pool)."""
    from swift_f0 import SwiftF0

    return SwiftF0(spin=False)  # no busy-waiting between chunks: Beam's other steps share the cores


def track_swift(audio_16k: np.ndarray, frame_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f0_hz and confidence (float32) at `frame_times` (seconds), interpolated between
    SwiftF0's frames: f0 in log-frequency, confidence linearly; held beyond the ends."""
    result = detector().detect(np.asarray(audio_16k, dtype=np.float32), SAMPLE_RATE)
    times = np.arange(len(result.pitch_hz)) * (HOP / SAMPLE_RATE)
    log_f0 = np.interp(frame_times, times, np.log(result.pitch_hz))
    confidence = np.interp(frame_times, times, result.confidence)
    return np.exp(log_f0).astype(np.float32), confidence.astype(np.float32)

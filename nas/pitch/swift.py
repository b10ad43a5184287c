"""SwiftF0 (Nieradzik, 2025; MIT, the `swift-f0` package's ONNX network) on ddsp's frame grid.

SwiftF0 gives a pitch and a 0-1 confidence (voiced at >= 0.5, as CREPE's `CLEAR_PITCH`)
for every 256 samples at 16 kHz, frame i centred on sample i * 256: against the demos'
exact f0 its accuracy peaks at the same time shift as CREPE's centred frames
(benchmarks/pitch.py). Its pitch is never 0: unvoiced frames carry its best guess, a
continuous f0 as CREPE's is, so ddsp's synth never jumps to 0 Hz.

Silence skips the network: only stretches of frames whose 256 samples peak at or above
`SILENT_PEAK` (below it the package itself reports confidence 0) are run, each with the
context that reproduces the whole-signal result (the package's own 11 frames before and
10 after, which its receptive field needs).
"""

from __future__ import annotations

import functools

import numpy as np

from . import SAMPLE_RATE, SILENT_PEAK, fill_skipped

HOP = 256
CONTEXT_BEFORE, CONTEXT_AFTER = 11, 10  # swift_f0.core's LEFT_FRAMES and LOOKAHEAD_FRAMES


@functools.cache
def detector():
    """One detector per process (building it allocates ONNX Runtime's thread pool)."""
    from swift_f0 import SwiftF0

    return SwiftF0(spin=False)  # no busy-waiting between chunks: Beam's other steps share the cores


def stretches(tracked: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the runs of tracked frames, each widened by the context, merged."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], tracked.astype(np.int8), [0]])))
    out: list[tuple[int, int]] = []
    for start, end in zip(edges[::2], edges[1::2]):
        start, end = max(0, start - CONTEXT_BEFORE), min(len(tracked), end + CONTEXT_AFTER)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((int(start), int(end)))
    return out


def swift_frames(audio_16k: np.ndarray, silent_peak: float = SILENT_PEAK) -> tuple[np.ndarray, np.ndarray]:
    """SwiftF0's own frames: pitch (continuous, also where skipped) and confidence."""
    audio = np.asarray(audio_16k, dtype=np.float32)
    n = max(1, len(audio) // HOP)
    peaks = np.abs(np.pad(audio, (0, max(0, n * HOP - len(audio))))[: n * HOP]).reshape(n, HOP).max(axis=1)
    tracked = peaks >= silent_peak
    pitch, confidence = np.zeros(n), np.zeros(n)
    for start, end in stretches(tracked):
        # the last stretch takes the audio to its end, as the package does with a whole signal
        part = audio[start * HOP: end * HOP if end < n else len(audio)]
        result = detector().detect(part, SAMPLE_RATE)
        pitch[start:end] = result.pitch_hz[: end - start]
        confidence[start:end] = result.confidence[: end - start]
    confidence[~tracked] = 0.0
    return fill_skipped(pitch, tracked), confidence


def track_swift(audio_16k: np.ndarray, frame_times: np.ndarray,
                silent_peak: float = SILENT_PEAK) -> tuple[np.ndarray, np.ndarray]:
    """f0_hz and confidence (float32) at `frame_times` (seconds), interpolated between
    SwiftF0's frames: f0 in log-frequency, confidence linearly; held beyond the ends."""
    pitch, confidence = swift_frames(audio_16k, silent_peak)
    times = np.arange(len(pitch)) * (HOP / SAMPLE_RATE)
    log_f0 = np.interp(frame_times, times, np.log(pitch))
    return np.exp(log_f0).astype(np.float32), np.interp(frame_times, times, confidence).astype(np.float32)

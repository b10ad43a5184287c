"""Short-time magnitude spectra in NumPy (loudness features, spectrogram plots)."""

from __future__ import annotations

import numpy as np


def periodic_hann(size: int) -> np.ndarray:
    """The periodic Hann window (tf.signal.hann_window's default), float64."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)


def stft_magnitude(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|rfft| of periodic-Hann frames (as tf.signal.stft), [frames, n_fft // 2 + 1]; no padding."""
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop]
    window = periodic_hann(n_fft).astype(np.float32)
    return np.abs(np.fft.rfft(frames * window, axis=-1))

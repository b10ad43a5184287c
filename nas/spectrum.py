"""Short-time magnitude spectra in NumPy (loudness features, spectrogram plots)."""

from __future__ import annotations

import numpy as np


def stft_magnitude(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|rfft| of periodic-Hann frames (as tf.signal.stft), [frames, n_fft // 2 + 1]; no padding."""
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop]
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    return np.abs(np.fft.rfft(frames * window, axis=-1))

"""Short-time magnitude spectra in NumPy (loudness features, spectrogram plots), and the
A-weighting that loudness puts on them."""

from __future__ import annotations

import functools

import numpy as np

LOUDNESS_N_FFT = 512  # ddsp's default for loudness features


@functools.lru_cache(maxsize=8)
def a_weighting(n_fft: int, sample_rate: int) -> np.ndarray:
    """The A-curve's power weight of each rfft bin."""
    import librosa

    frequencies = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    with np.errstate(divide="ignore"):  # the A-curve takes log10(0) at 0 Hz (weight 0)
        return 10 ** (librosa.A_weighting(frequencies) / 10)


def periodic_hann(size: int) -> np.ndarray:
    """The periodic Hann window (tf.signal.hann_window's default), float64."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)


def stft_magnitude(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|rfft| of periodic-Hann frames (as tf.signal.stft), [frames, n_fft // 2 + 1]; no padding."""
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop]
    window = periodic_hann(n_fft).astype(np.float32)
    return np.abs(np.fft.rfft(frames * window, axis=-1))

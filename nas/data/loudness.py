"""A-weighted loudness in dB, as `ddsp.spectral_ops.compute_loudness` defines it, in NumPy.

Same definition: Hann-windowed (periodic) STFT of n_fft samples every sample_rate /
frame_rate, power weighted by the A-curve at each bin's frequency, mean over bins,
10 log10 with an 80 dB floor. Written here so feature workers need neither TensorFlow's
eager overhead nor ddsp's imports; `tests/test_loudness.py` checks it against ddsp's
function on real audio.
"""

from __future__ import annotations

import numpy as np

from ..constants import DB_RANGE
from ..spectrum import LOUDNESS_N_FFT, a_weighting, stft_magnitude


def compute_loudness(audio: np.ndarray, sample_rate: int, frame_rate: int, n_fft: int = LOUDNESS_N_FFT,
                     centered: bool = True, range_db: float = DB_RANGE) -> np.ndarray:
    """Loudness [frames] of mono audio; `centered`: ddsp's "center" padding, else "same"."""
    hop = sample_rate // frame_rate
    audio = np.asarray(audio, dtype=np.float32)
    n = len(audio)
    if centered:
        audio = np.pad(audio, n_fft // 2)
    else:
        n_frames = -(-n // hop)
        audio = np.pad(audio, (0, (n_frames - 1) * hop + n_fft - n))
    return spectra_loudness(stft_magnitude(audio, n_fft, hop), sample_rate, range_db)


def spectra_loudness(magnitudes: np.ndarray, sample_rate: int, range_db: float = DB_RANGE) -> np.ndarray:
    """Loudness [frames] of Hann-windowed magnitude spectra [frames, n_fft // 2 + 1]: the one
    place the A-weighting, the mean over bins and the floor are written (offline and live)."""
    n_fft = 2 * (magnitudes.shape[-1] - 1)
    mean_power = (magnitudes ** 2 * a_weighting(n_fft, sample_rate)).mean(axis=-1)
    db = 10.0 * np.log10(np.maximum(mean_power, 10 ** (-range_db / 10)))
    return np.maximum(db, -range_db).astype(np.float32)

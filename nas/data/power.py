"""Power: the level feature DDSP-VST's feature model computes (and ddsp's statistics).

The mean square of 1,024 samples at 16 kHz, in dB with an 80 dB floor: what
`ddsp.spectral_ops.compute_power` computes and what the plugin's
`extract_features_micro.tflite` returns as its power (tests/test_ddsp_vst.py). Unlike
A-weighted loudness it weighs every frequency alike.
"""

from __future__ import annotations

import numpy as np

from ..config import POWER_FRAME_SIZE
from ..constants import DB_RANGE, SAMPLE_RATE


def compute_power(audio: np.ndarray, frame_rate: int, centered: bool = True, frame_size: int = POWER_FRAME_SIZE,
                  range_db: float = DB_RANGE) -> np.ndarray:
    """Power of 16 kHz audio, one frame every 16000 / frame_rate samples. Centred: frame j
    is centred on j * hop (zero padding both ends, n / hop + 1 frames); otherwise it starts
    there (ddsp's `same` padding, ceil(n / hop) frames)."""
    hop = SAMPLE_RATE // frame_rate
    audio = np.asarray(audio, np.float32)
    padding = (frame_size // 2, frame_size // 2) if centered else (0, frame_size)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(audio, padding), frame_size)[::hop]
    count = len(audio) // hop + 1 if centered else -(-len(audio) // hop)
    return power_db(frames[:count], range_db)


def power_db(frames: np.ndarray, range_db: float = DB_RANGE) -> np.ndarray:
    """Frames [n, samples] -> the mean square of each, in dB with a floor of -range_db."""
    power = np.mean(np.asarray(frames, np.float64) ** 2, axis=-1)
    db = 10.0 * np.log10(np.maximum(power, 10 ** (-range_db / 10)))
    return np.maximum(db, -range_db).astype(np.float32)

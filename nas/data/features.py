"""Frame-level features of 16 kHz audio: CREPE f0 and A-weighted loudness."""

from __future__ import annotations

import numpy as np

from ..pitch import CLEAR_PITCH
from ..pitch.network import SAMPLE_RATE
from ..pitch.tracker import hop_for_frame_rate, track_pitch
from .loudness import LOUDNESS_N_FFT, compute_loudness

SOUNDING_DB = -55.0  # quieter frames are not notes, whatever CREPE says
# A single line leaves pitch unclear on a few sounding frames (2-9% on the demo violin,
# note changes); a mix of three violins on 24%, white noise on all.
POLYPHONIC_SHARE = 0.2


def frame_count(n_samples_16k: int, frame_rate: int, centered: bool) -> int:
    """Frames for `center` (n / hop + 1) or `same` (ceil(n / hop)) padding, as ddsp."""
    hop = hop_for_frame_rate(frame_rate)
    return n_samples_16k // hop + 1 if centered else -(-n_samples_16k // hop)


def compute_features(audio_16k: np.ndarray, frame_rate: int, centered: bool, capacity: str,
                     viterbi: bool, batch_frames: int) -> dict[str, np.ndarray]:
    """f0_hz, f0_confidence and loudness_db, all with `frame_count` frames."""
    hop = hop_for_frame_rate(frame_rate)
    n = frame_count(len(audio_16k), frame_rate, centered)
    if centered:
        track = track_pitch(audio_16k, hop, capacity, viterbi, center=True, batch_frames=batch_frames)
    else:
        # "same" padding: pad the end so every hop starts a frame, as ddsp.spectral_ops.pad does.
        padded = np.pad(audio_16k, (0, (n - 1) * hop + 1024 - len(audio_16k)))
        track = track_pitch(padded, hop, capacity, viterbi, center=False, batch_frames=batch_frames)
    return {
        "f0_hz": track.f0_hz[:n],
        "f0_confidence": track.confidence[:n],
        "loudness_db": compute_loudness(audio_16k, SAMPLE_RATE, frame_rate, LOUDNESS_N_FFT, centered)[:n],
    }


def unclear_pitch_share(confidence: np.ndarray, loudness_db: np.ndarray) -> float | None:
    """The share of sounding frames where CREPE is unsure of the pitch (None if none
    sounds); above POLYPHONIC_SHARE the audio is not one melodic line."""
    sounding = np.asarray(loudness_db) > SOUNDING_DB
    return float(np.mean(np.asarray(confidence)[sounding] < CLEAR_PITCH)) if sounding.any() else None

"""Frame-level features of 16 kHz audio: f0 (CREPE or SwiftF0), A-weighted loudness and
power (DDSP-VST's level feature)."""

from __future__ import annotations

import numpy as np

from ..config import DatasetConfig
from ..pitch import CLEAR_PITCH, FRAME_SIZE, SAMPLE_RATE, hop_for_frame_rate
from ..spectrum import LOUDNESS_N_FFT
from .loudness import compute_loudness
from .power import compute_power

SOUNDING_DB = -55.0  # quieter frames are not notes, whatever CREPE says
# A single line leaves pitch unclear on a few sounding frames (2-9% on the demo violin,
# note changes); a mix of three violins on 24%, white noise on all.
POLYPHONIC_SHARE = 0.2


def frame_count(n_samples_16k: int, frame_rate: int, centered: bool) -> int:
    """Frames for `center` (n / hop + 1) or `same` (ceil(n / hop)) padding, as ddsp."""
    hop = hop_for_frame_rate(frame_rate)
    return n_samples_16k // hop + 1 if centered else -(-n_samples_16k // hop)


def compute_features(audio_16k: np.ndarray, config: DatasetConfig) -> dict[str, np.ndarray]:
    """f0_hz, f0_confidence, loudness_db and power_db, all with `frame_count` frames. Neither
    pitch method imports TensorFlow (both run in ONNX Runtime)."""
    frame_rate, centered = config.frame_rate, config.centered
    n = frame_count(len(audio_16k), frame_rate, centered)
    if config.pitch.method == "swiftf0":
        from ..pitch.swift import track_swift

        # frame j is centred on j * hop, or (`same` padding) on the centre of CREPE's frame starting there
        times = np.arange(n) / frame_rate + (0 if centered else FRAME_SIZE / 2 / SAMPLE_RATE)
        f0_hz, confidence = track_swift(audio_16k, times)
    else:
        f0_hz, confidence = _crepe(audio_16k, n, config)
    return {
        "f0_hz": f0_hz,
        "f0_confidence": confidence,
        "loudness_db": compute_loudness(audio_16k, SAMPLE_RATE, frame_rate, LOUDNESS_N_FFT, centered)[:n],
        "power_db": compute_power(audio_16k, frame_rate, centered)[:n],
    }


def _crepe(audio_16k: np.ndarray, n: int, config: DatasetConfig) -> tuple[np.ndarray, np.ndarray]:
    from ..pitch.tracker import track_pitch

    hop, crepe = hop_for_frame_rate(config.frame_rate), config.crepe
    audio = audio_16k
    if not config.centered:  # "same" padding: pad the end so every hop starts a frame, as ddsp.spectral_ops.pad does
        audio = np.pad(audio_16k, (0, (n - 1) * hop + FRAME_SIZE - len(audio_16k)))
    track = track_pitch(audio, hop, crepe.capacity, crepe.viterbi, center=config.centered,
                        batch_frames=crepe.batch_frames)
    return track.f0_hz[:n], track.confidence[:n]


def unclear_pitch_share(confidence: np.ndarray, loudness_db: np.ndarray) -> float | None:
    """The share of sounding frames where CREPE is unsure of the pitch (None if none
    sounds); above POLYPHONIC_SHARE the audio is not one melodic line."""
    sounding = np.asarray(loudness_db) > SOUNDING_DB
    return float(np.mean(np.asarray(confidence)[sounding] < CLEAR_PITCH)) if sounding.any() else None

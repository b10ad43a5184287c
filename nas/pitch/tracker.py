"""f0 and confidence from 16 kHz audio with CREPE, batched, one network per process."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .decode import cents_to_hz, local_average_cents, viterbi_path
from .network import FRAME_SIZE, load_network

DEFAULT_BATCH_FRAMES = 64  # full: ~64 MB per activation tensor; larger batches are no faster on CPU


@dataclass(frozen=True)
class PitchTrack:
    f0_hz: np.ndarray  # [frames] float32
    confidence: np.ndarray  # [frames] float32, the peak activation
    activation: np.ndarray  # [frames, 360] float32


def frame_audio(audio: np.ndarray, hop: int, center: bool) -> np.ndarray:
    """Frames of 1024 samples every `hop`, each normalised to zero mean, unit std.

    `center` pads 512 zeros at both ends (frame t is centred on sample t * hop)."""
    audio = np.asarray(audio, dtype=np.float32)
    if center:
        audio = np.pad(audio, FRAME_SIZE // 2)
    if len(audio) < FRAME_SIZE:
        audio = np.pad(audio, (0, FRAME_SIZE - len(audio)))
    n_frames = 1 + (len(audio) - FRAME_SIZE) // hop
    frames = np.lib.stride_tricks.sliding_window_view(audio, FRAME_SIZE)[::hop][:n_frames]
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames /= np.clip(frames.std(axis=1, keepdims=True), 1e-8, None)
    return frames


def activations(frames: np.ndarray, capacity: str, batch_frames: int = DEFAULT_BATCH_FRAMES) -> np.ndarray:
    network = load_network(capacity)
    out = np.empty((len(frames), 360), dtype=np.float32)
    for start in range(0, len(frames), batch_frames):
        out[start:start + batch_frames] = network(frames[start:start + batch_frames]).numpy()
    return out


def track_pitch(
    audio_16k: np.ndarray,
    hop: int,
    capacity: str = "full",
    viterbi: bool = True,
    center: bool = True,
    batch_frames: int = DEFAULT_BATCH_FRAMES,
) -> PitchTrack:
    """CREPE f0 of mono 16 kHz audio, one frame every `hop` samples."""
    activation = activations(frame_audio(audio_16k, hop, center), capacity, batch_frames)
    centers = viterbi_path(activation) if viterbi else None
    f0 = cents_to_hz(local_average_cents(activation, centers))
    return PitchTrack(f0.astype(np.float32), activation.max(axis=1), activation)

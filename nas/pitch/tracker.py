"""f0 and confidence from 16 kHz audio with CREPE (in ONNX Runtime), batched, one network per
process."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import FRAME_SIZE, SILENT_PEAK, fill_skipped
from .decode import cents_to_hz, local_average_cents, viterbi_path
from .weights import N_BINS

DEFAULT_BATCH_FRAMES = 64  # full: ~64 MB per activation tensor; larger batches are no faster on CPU


@dataclass(frozen=True)
class PitchTrack:
    f0_hz: np.ndarray  # [frames] float32
    confidence: np.ndarray  # [frames] float32, the peak activation
    activation: np.ndarray  # [frames, 360] float32


def frame_windows(audio: np.ndarray, hop: int, center: bool) -> np.ndarray:
    """Frames of 1024 samples every `hop`, as a view of the (padded) audio.

    `center` pads 512 zeros at both ends (frame t is centred on sample t * hop)."""
    audio = np.asarray(audio, dtype=np.float32)
    if center:
        audio = np.pad(audio, FRAME_SIZE // 2)
    if len(audio) < FRAME_SIZE:
        audio = np.pad(audio, (0, FRAME_SIZE - len(audio)))
    n_frames = 1 + (len(audio) - FRAME_SIZE) // hop
    return np.lib.stride_tricks.sliding_window_view(audio, FRAME_SIZE)[::hop][:n_frames]


def normalized(windows: np.ndarray) -> np.ndarray:
    """Each frame at zero mean and unit std, as CREPE takes them."""
    frames = windows - windows.mean(axis=1, keepdims=True)
    frames /= np.clip(frames.std(axis=1, keepdims=True), 1e-8, None)
    return frames


def frame_audio(audio: np.ndarray, hop: int, center: bool) -> np.ndarray:
    """`frame_windows`, normalised."""
    return normalized(frame_windows(audio, hop, center))


def window_peaks(windows: np.ndarray) -> np.ndarray:
    """The absolute peak of each frame."""
    return np.abs(windows).max(axis=1)


def frame_peaks(audio: np.ndarray, hop: int, center: bool) -> np.ndarray:
    """The absolute peak of each of `frame_audio`'s frames, before its normalisation."""
    return window_peaks(frame_windows(audio, hop, center))


def activations(frames: np.ndarray, capacity: str, batch_frames: int = DEFAULT_BATCH_FRAMES) -> np.ndarray:
    from .onnx_network import load_onnx_network

    network = load_onnx_network(capacity)
    out = np.empty((len(frames), N_BINS), dtype=np.float32)
    for start in range(0, len(frames), batch_frames):
        out[start:start + batch_frames] = network(frames[start:start + batch_frames])
    return out


def track_pitch(
    audio_16k: np.ndarray,
    hop: int,
    capacity: str = "full",
    viterbi: bool = True,
    center: bool = True,
    batch_frames: int = DEFAULT_BATCH_FRAMES,
    silent_peak: float = SILENT_PEAK,
) -> PitchTrack:
    """CREPE f0 of mono 16 kHz audio, one frame every `hop` samples. Frames peaking below
    `silent_peak` skip the network (0: none do): their activation is 0, Viterbi's path
    crosses them with no observation, and their f0 is carried on from tracked frames."""
    return decode_track(*tracked_activations(audio_16k, hop, capacity, center, batch_frames, silent_peak), viterbi)


def tracked_activations(audio_16k: np.ndarray, hop: int, capacity: str, center: bool = True,
                        batch_frames: int = DEFAULT_BATCH_FRAMES,
                        silent_peak: float = SILENT_PEAK) -> tuple[np.ndarray, np.ndarray]:
    """The network's activation [frames, 360] (0 where skipped) and which frames it ran on."""
    windows = frame_windows(audio_16k, hop, center)
    tracked = window_peaks(windows) >= silent_peak  # the frames above, not padded and framed again
    activation = np.zeros((len(windows), N_BINS), dtype=np.float32)
    activation[tracked] = activations(normalized(windows[tracked]), capacity, batch_frames)
    return activation, tracked


def decode_track(activation: np.ndarray, tracked: np.ndarray, viterbi: bool) -> PitchTrack:
    centers = viterbi_path(activation, tracked) if viterbi else None
    f0 = fill_skipped(cents_to_hz(local_average_cents(activation, centers)), tracked)
    return PitchTrack(f0.astype(np.float32), activation.max(axis=1), activation)

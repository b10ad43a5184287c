"""Timbre transfer: any monophonic recording played by a trained model.

As in ddsp's timbre-transfer procedure: extract f0 (the dataset's tracker and settings) and
loudness (and power, for a model trained on it); on the frames where a note sounds, shift
the pitch by whole octaves toward the dataset's mean note pitch and the model's level by
the difference of its mean over notes;
attenuate the frames between notes; synthesise with the CPU engine (any length).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.constants import LEVELS
from nas.data.audio import AudioError, read_mono
from nas.data.features import POLYPHONIC_SHARE, SOUNDING_DB, unclear_pitch_share
from nas.data.loudness import compute_loudness
from nas.data.power import compute_power
from nas.engine.engine import hz_to_midi
from nas.locations import location
from nas.pitch import SAMPLE_RATE as PITCH_RATE
from nas.pitch import SURE_PITCH, hop_for_frame_rate
from nas.pitch.tracker import track_pitch
from nas.play.adjust import Adjustment, Transferred
from nas.play.model import load_engine, run_paths
from nas.play.rates import check_rate, convert
from nas.resample import resample
from nas.store.artifacts import DatasetMeta, DatasetStatistics
from nas.store.datasets import load_metadata, load_statistics

SILENT_PEAK = 1e-4


class TransferError(ValueError):
    """Input that cannot be transferred; the message names the file and the reason."""


def read_source(path: Path) -> tuple[np.ndarray, int]:
    """A recording to transfer, mono at its own rate; TransferError says what is wrong with it."""
    try:
        audio, rate, _ = read_mono(path)
    except AudioError as error:
        raise TransferError(f"{path}: {error}") from None
    if len(audio) < rate * 0.25:
        raise TransferError(f"{path}: {len(audio) / max(rate, 1):.2f} s is too short to transfer (at least 0.25 s)")
    if not np.all(np.isfinite(audio)) or np.abs(audio).max() < SILENT_PEAK:
        raise TransferError(f"{path}: silent or not finite (peak {np.abs(audio).max():.1e})")
    try:
        check_rate(rate)
    except ValueError as error:
        raise TransferError(f"{path}: {error}") from None
    return audio, rate


def analyse(path: Path, sample_rate: int, metadata: DatasetMeta, control_rate: int) -> tuple[dict[str, np.ndarray], int]:
    """f0, loudness and power of a monophonic file at the control rate, plus the note mask;
    and the file's own rate."""
    audio, rate = read_source(path)
    audio = resample(audio, rate, sample_rate)
    frames = len(audio) // (sample_rate // control_rate)
    times = np.arange(frames) / control_rate
    audio_16k = resample(audio, sample_rate, PITCH_RATE)
    f0_hz, confidence = _pitch(audio_16k, metadata, times)
    loudness = compute_loudness(audio, sample_rate, control_rate, centered=True)[:frames]
    sounding = loudness > SOUNDING_DB
    unclear = unclear_pitch_share(confidence, loudness)
    if unclear is None:
        raise TransferError(f"{path}: silent (loudness never above {SOUNDING_DB:.0f} dB)")
    if unclear > POLYPHONIC_SHARE:
        raise TransferError(f"{path}: does not look monophonic (pitch unclear on {unclear:.0%} of sounding "
                            "frames; a single line is needed)")
    return {"f0_hz": f0_hz.astype(np.float32), "loudness_db": loudness,
            "power_db": compute_power(audio_16k, control_rate, centered=True)[:frames],
            "notes": (confidence >= SURE_PITCH) & sounding}, rate


def _pitch(audio_16k: np.ndarray, metadata: DatasetMeta, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f0 and confidence at `times` (centred frames), from the tracker that made the dataset."""
    if metadata.pitch.method == "swiftf0":
        from nas.pitch.swift import track_swift

        return track_swift(audio_16k, times)
    crepe = metadata.crepe
    track = track_pitch(audio_16k, hop_for_frame_rate(metadata.frame_rate), crepe.model, crepe.viterbi, center=True)
    frame_times = np.arange(len(track.f0_hz)) / metadata.frame_rate
    return np.interp(times, frame_times, track.f0_hz), np.interp(times, frame_times, track.confidence)


def adjust(features: dict, statistics: DatasetStatistics, level: str = "loudness") -> tuple[dict, Adjustment]:
    """Octave shift and level offset toward the dataset (ddsp statistics, note frames):
    `f0_hz` and the level (`loudness_db` or `power_db`)."""
    key = LEVELS[level][0]
    notes = features["notes"] if features["notes"].any() else np.ones_like(features["notes"])
    shift = Adjustment.toward(statistics, float(hz_to_midi(features["f0_hz"][notes]).mean()),
                              float(features[key][notes].mean()), level)
    f0_hz, level_db = shift(features["f0_hz"], features[key], features["notes"])
    return {"f0_hz": f0_hz, key: level_db}, shift


def transfer(model: Path, source: Path) -> tuple[np.ndarray, Transferred]:
    """`source` played by the model in `model`, at the source's rate, and what was done."""
    run, config = run_paths(model)
    dataset_dir = location(config["dataset"]["dir"])
    statistics, metadata = load_statistics(dataset_dir), load_metadata(dataset_dir)
    engine = load_engine(run)
    features, rate = analyse(Path(source), engine.sample_rate, metadata, engine.control_rate)
    adjusted, shift = adjust(features, statistics, engine.level)
    audio = convert(engine.render(adjusted["f0_hz"], adjusted[LEVELS[engine.level][0]]), engine.sample_rate, rate)
    return audio, Transferred(shift, rate, len(audio) / rate)


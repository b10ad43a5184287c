"""Timbre transfer: any monophonic recording played by a trained model.

As in ddsp's timbre-transfer procedure: extract f0 (the dataset's tracker and settings) and
loudness (and power, for a model trained on it); on the frames where a note sounds, shift
the pitch by whole octaves toward the dataset's mean note pitch and the model's level by
the difference of its mean over notes;
attenuate the frames between notes; synthesise with the CPU engine (any length).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.data.audio import AudioError, read_mono
from nas.data.features import POLYPHONIC_SHARE, SOUNDING_DB, unclear_pitch_share
from nas.data.loudness import compute_loudness
from nas.data.power import compute_power
from nas.engine.engine import hz_to_midi
from nas.pitch import SAMPLE_RATE as PITCH_RATE
from nas.pitch import SURE_PITCH, hop_for_frame_rate
from nas.pitch.tracker import track_pitch
from nas.play.adjust import Adjustment, Transferred
from nas.play.controls import Controls
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


@dataclass(frozen=True)
class Analysis:
    """A recording's frames at the control rate: f0 (Hz), loudness and power (dB), and which
    frames are notes (a sure pitch, sounding)."""

    f0_hz: np.ndarray
    loudness_db: np.ndarray
    power_db: np.ndarray
    notes: np.ndarray

    def level(self, name: str) -> np.ndarray:
        """`loudness` or `power`: the level a model takes."""
        return self.power_db if name == "power" else self.loudness_db


def analyse(path: Path, sample_rate: int, metadata: DatasetMeta, control_rate: int) -> tuple[Analysis, int]:
    """A monophonic file's analysis at the control rate, and the file's own rate."""
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
    return Analysis(f0_hz.astype(np.float32), loudness, compute_power(audio_16k, control_rate, centered=True)[:frames],
                    (confidence >= SURE_PITCH) & sounding), rate


def _pitch(audio_16k: np.ndarray, metadata: DatasetMeta, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f0 and confidence at `times` (centred frames), from the tracker that made the dataset."""
    if metadata.pitch.method == "swiftf0":
        from nas.pitch.swift import track_swift

        return track_swift(audio_16k, times)
    crepe = metadata.crepe
    track = track_pitch(audio_16k, hop_for_frame_rate(metadata.frame_rate), crepe.model, crepe.viterbi, center=True)
    frame_times = np.arange(len(track.f0_hz)) / metadata.frame_rate
    return np.interp(times, frame_times, track.f0_hz), np.interp(times, frame_times, track.confidence)


def adjust(analysis: Analysis, statistics: DatasetStatistics, level: str = "loudness") -> tuple[Controls, Adjustment]:
    """The controls shifted by octaves and offset in level toward the dataset's (ddsp
    statistics, note frames); `level`: `loudness` or `power`."""
    notes = analysis.notes if analysis.notes.any() else np.ones_like(analysis.notes)
    shift = Adjustment.toward(statistics, float(hz_to_midi(analysis.f0_hz[notes]).mean()),
                              float(analysis.level(level)[notes].mean()), level)
    return Controls(*shift(analysis.f0_hz, analysis.level(level), analysis.notes)), shift


def transfer(model: Path, source: Path) -> tuple[np.ndarray, Transferred]:
    """`source` played by the model in `model`, at the source's rate, and what was done."""
    run, dataset_dir = run_paths(model)
    statistics, metadata = load_statistics(dataset_dir), load_metadata(dataset_dir)
    engine = load_engine(run)
    analysis, rate = analyse(Path(source), engine.sample_rate, metadata, engine.control_rate)
    controls, shift = adjust(analysis, statistics, engine.level)
    audio = convert(engine.render(controls.f0_hz, controls.level_db), engine.sample_rate, rate)
    return audio, Transferred(shift, rate, len(audio) / rate)


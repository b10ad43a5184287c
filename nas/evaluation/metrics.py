"""Per-example scores of a resynthesis, as the DDSP paper and the thesis report them.

- spectral loss: the multi-scale spectral loss of training (ddsp's SpectralLoss);
- f0: CREPE re-run on the resynthesis, compared with the input's f0 on the frames where
  the input's CREPE confidence is high: mean absolute error in cents, and raw pitch
  accuracy (share of those frames within 50 cents, as in mir_eval);
- loudness: A-weighted loudness of the resynthesis vs the input's, mean absolute dB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.data.loudness import compute_loudness
from nas.pitch import SAMPLE_RATE as CREPE_RATE
from nas.pitch import SURE_PITCH, hop_for_frame_rate
from nas.pitch.tracker import track_pitch
from nas.resample import resample
from nas.store.artifacts import DatasetMeta, Frozen, HistoryRow, Scores

RPA_CENTS = 50.0

HIGHER_IS_WORSE = ("spectral_loss", "f0_mae_cents", "loudness_mae_db")
LOWER_IS_WORSE = ("rpa",)


def cents(estimate_hz: np.ndarray, reference_hz: np.ndarray) -> np.ndarray:
    return 1200.0 * np.log2(np.maximum(estimate_hz, 1e-3) / np.maximum(reference_hz, 1e-3))


@dataclass(frozen=True)
class Tracks:
    """A signal's f0 (Hz), its confidence and its loudness (dB) at the dataset's frame rate:
    a record's, or a resynthesis' as scoring measures it."""

    f0_hz: np.ndarray
    f0_confidence: np.ndarray
    loudness_db: np.ndarray


class ExampleScores(Frozen):
    """One example's row of `evaluation.parquet`, in its column order. The pitch sums are kept
    so that aggregates pool frames exactly."""

    example: int
    spectral_loss: float
    loudness_mae_db: float
    confident_frames: int
    f0_abs_cents_sum: float
    rpa_hits: int
    f0_mae_cents: float
    rpa: float


def pitch_scores(f0_reference: np.ndarray, confidence: np.ndarray, f0_estimate: np.ndarray) -> dict:
    """ExampleScores' pitch fields: errors on the confident frames."""
    n = min(len(f0_reference), len(f0_estimate))
    mask = (confidence[:n] >= SURE_PITCH) & (f0_reference[:n] > 0)
    error = np.abs(cents(f0_estimate[:n][mask], f0_reference[:n][mask]))
    frames = int(mask.sum())
    return {"confident_frames": frames, "f0_abs_cents_sum": float(error.sum()),
            "rpa_hits": int((error < RPA_CENTS).sum()),
            "f0_mae_cents": float(error.mean()) if frames else float("nan"),
            "rpa": float((error < RPA_CENTS).mean()) if frames else float("nan")}


def resynthesis_tracks(audio: np.ndarray, metadata: DatasetMeta) -> Tracks:
    """f0, confidence and loudness of audio at the dataset's frame rate and settings."""
    rate = metadata.sample_rate
    audio_16k = audio if rate == CREPE_RATE else resample(audio, rate, CREPE_RATE)
    crepe = metadata.crepe
    track = track_pitch(audio_16k, hop_for_frame_rate(metadata.frame_rate), crepe.model, crepe.viterbi,
                        metadata.centered)
    loudness = compute_loudness(audio, rate, metadata.frame_rate, centered=metadata.centered)
    return Tracks(track.f0_hz, track.confidence, loudness)


def score_example(example: int, reference: Tracks, resynthesis: np.ndarray, spectral_loss: float,
                  metadata: DatasetMeta) -> tuple[ExampleScores, Tracks]:
    """reference: a record's tracks. Returns the scores and the resynthesis' tracks (for plots)."""
    tracks = resynthesis_tracks(resynthesis, metadata)
    n = min(len(reference.loudness_db), len(tracks.loudness_db))
    loudness_error = np.abs(tracks.loudness_db[:n] - reference.loudness_db[:n])
    scores = ExampleScores(example=example, spectral_loss=float(spectral_loss),
                           loudness_mae_db=float(loudness_error.mean()),
                           **pitch_scores(reference.f0_hz, reference.f0_confidence, tracks.f0_hz))
    return scores, tracks


def aggregate(rows: list[ExampleScores]) -> Scores:
    """The per-example rows -> the evaluation's scores."""
    frames = sum(r.confident_frames for r in rows)
    return Scores(
        examples=len(rows),
        spectral_loss=float(np.mean([r.spectral_loss for r in rows])),
        loudness_mae_db=float(np.mean([r.loudness_mae_db for r in rows])),
        confident_frames=frames,
        f0_mae_cents=sum(r.f0_abs_cents_sum for r in rows) / frames if frames else float("nan"),
        rpa=sum(r.rpa_hits for r in rows) / frames if frames else float("nan"),
    )


def regressions(previous: HistoryRow, current: Scores, tolerance: float = 0.02) -> list[str]:
    """Metrics worse than the previous evaluation by more than `tolerance` (relative; for
    RPA, absolute). Evaluation is seeded, so the same model on the same data scores the same."""
    worse = []
    for key in HIGHER_IS_WORSE:
        before, now = getattr(previous, key), getattr(current, key)
        if np.isfinite(before) and now > before * (1 + tolerance) + 1e-9:
            worse.append(f"{key} {before:.4g} -> {now:.4g}")
    for key in LOWER_IS_WORSE:
        before, now = getattr(previous, key), getattr(current, key)
        if np.isfinite(before) and now < before - tolerance:
            worse.append(f"{key} {before:.4g} -> {now:.4g}")
    return worse

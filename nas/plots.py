"""PNG plots of a prepared dataset: feature distributions and tracks over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .atomic import atomic_path  # noqa: E402

CONFIDENT = 0.5


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_distributions(features, path: Path) -> None:
    """Histograms of pitch (confident frames, MIDI) and loudness (all frames)."""
    fig, (ax_pitch, ax_loud) = plt.subplots(1, 2, figsize=(11, 3.5))
    confident = features[features.f0_confidence >= CONFIDENT]
    midi = 69 + 12 * np.log2(np.maximum(confident.f0_hz.to_numpy(), 1e-3) / 440)
    ax_pitch.hist(midi, bins=np.arange(30, 100, 0.5), color="tab:blue")
    ax_pitch.set(title=f"pitch (confidence >= {CONFIDENT})", xlabel="MIDI note", ylabel="frames")
    ax_loud.hist(features.loudness_db, bins=80, color="tab:orange")
    ax_loud.set(title="loudness", xlabel="dB (A-weighted)", ylabel="frames")
    _save(fig, path)


def plot_tracks(features, path: Path, n_files: int = 3) -> None:
    """f0 (opacity = confidence) and loudness over time for the first few files."""
    paths = sorted(features.path.unique())[:n_files]
    fig, axes = plt.subplots(len(paths), 1, figsize=(11, 2.6 * len(paths)), squeeze=False)
    for ax, name in zip(axes[:, 0], paths):
        part = features[features.path == name].sort_values("time_s")
        ax.scatter(part.time_s, part.f0_hz, s=2, c="tab:blue", alpha=np.clip(part.f0_confidence, 0.05, 1))
        ax.set(yscale="log", ylabel="f0 (Hz)", title=Path(name).name)
        twin = ax.twinx()
        twin.plot(part.time_s, part.loudness_db, color="tab:orange", lw=0.8)
        twin.set_ylabel("loudness (dB)")
    axes[-1, 0].set_xlabel("time (s)")
    _save(fig, path)

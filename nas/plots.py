"""PNG plots: a prepared dataset (feature distributions, tracks over time) and a training
run (loss curve, original vs resynthesised spectrograms)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .atomic import atomic_path  # noqa: E402
from .pitch import CLEAR_PITCH  # noqa: E402
from .spectrum import stft_magnitude  # noqa: E402


def _save(fig, path: Path) -> None:
    # zlib level 1, not Pillow's 6: a third of a spectrogram's CPU less for a 9% larger file
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", pil_kwargs={"compress_level": 1})
    plt.close(fig)


def plot_distributions(features, path: Path) -> None:
    """Histograms of pitch (confident frames, MIDI) and loudness (all frames)."""
    fig, (ax_pitch, ax_loud) = plt.subplots(1, 2, figsize=(11, 3.5))
    confident = features[features.f0_confidence >= CLEAR_PITCH]
    midi = 69 + 12 * np.log2(np.maximum(confident.f0_hz.to_numpy(), 1e-3) / 440)
    ax_pitch.hist(midi, bins=np.arange(30, 100, 0.5), color="tab:blue")
    ax_pitch.set(title=f"pitch (confidence >= {CLEAR_PITCH})", xlabel="MIDI note", ylabel="frames")
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


def plot_loss_curve(rows: list, path: Path, title: str = "", log_floor: float = 0.0) -> None:
    """Training loss (logged every few steps; its log magnitudes floored at `log_floor`) and
    eval loss (ddsp's), against the step, from a run's `nas.store.artifacts.MetricsRow`s."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    train = [(r.step, r.loss) for r in rows if np.isfinite(r.loss)]
    evals = [(r.step, r.eval_loss) for r in rows if np.isfinite(r.eval_loss)]
    if train:
        ax.plot(*zip(*train), label=f"train (log floor {log_floor:g})" if log_floor else "train", lw=1.2)
    if evals:
        ax.plot(*zip(*evals), "o-", label="eval (ddsp's loss)", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("multi-scale spectral loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_spectrograms(original: np.ndarray, synthesized: np.ndarray, sample_rate: int, path: Path,
                      title: str = "") -> None:
    """Log-magnitude spectrograms side by side on one colour scale."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
    specs = [_log_spectrogram(audio) for audio in (original, synthesized)]
    top = max(s.max() for s in specs)
    for ax, spec, name in zip(axes, specs, ("original", "resynthesis")):
        ax.imshow(spec, origin="lower", aspect="auto", vmin=top - 80, vmax=top, cmap="magma",
                  extent=(0, len(original) / sample_rate, 0, sample_rate / 2))
        ax.set_title(name)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz)")
    fig.suptitle(title)
    _save(fig, path)


def _log_spectrogram(audio: np.ndarray, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """dB magnitudes, [frequency, time]."""
    audio = np.pad(audio, (0, max(0, n_fft - len(audio))))
    return 20 * np.log10(np.maximum(stft_magnitude(audio, n_fft, hop).T, 1e-6))


def plot_feature_tracks(frame_rate: float, tracks: dict[str, tuple[np.ndarray, np.ndarray]], path: Path,
                        title: str = "") -> None:
    """Input vs resynthesis per feature, e.g. {"f0 (Hz)": (input, resynthesis), ...}."""
    fig, axes = plt.subplots(len(tracks), 1, figsize=(9, 2.4 * len(tracks)), sharex=True)
    for ax, (name, (reference, estimate)) in zip(np.atleast_1d(axes), tracks.items()):
        for values, label in ((reference, "input"), (estimate, "resynthesis")):
            ax.plot(np.arange(len(values)) / frame_rate, values, lw=1.0, label=label)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(loc="upper right")
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    fig.suptitle(title)
    _save(fig, path)


def plot_frontier(points: list, front: list, path: Path, title: str = "") -> None:
    """Spectral loss against the whole path's real-time factor (log): one marker per
    (point, runtime) (`nas.sweep.FrontierPoint`), shaped by preset and coloured by runtime,
    the Pareto front drawn."""
    fig, ax = plt.subplots(figsize=(9, 5.5))
    shapes = dict(zip(sorted({p.preset for p in points}), "osD^v<>pP*"))
    colours = {r: f"C{i}" for i, r in enumerate(dict.fromkeys(p.runtime for p in points))}
    for p in points:
        ax.scatter(p.rtf, p.spectral_loss, marker=shapes[p.preset], color=colours[p.runtime], s=40, alpha=0.8)
    if front:
        ax.step([p.rtf for p in front], [p.spectral_loss for p in front], where="post", color="k", lw=1)
        ax.scatter([p.rtf for p in front], [p.spectral_loss for p in front], s=140, facecolors="none",
                   edgecolors="k", label="Pareto front")
    from matplotlib.patches import Patch

    for preset, shape in shapes.items():
        ax.scatter([], [], marker=shape, color="grey", label=preset)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color=colour, label=runtime) for runtime, colour in colours.items()]
    ax.set(xscale="log", xlabel="real-time factor, controls -> audio (one thread, batch 1)",
           ylabel="spectral loss (eval; int8: with its change)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(handles=handles, fontsize=8, ncol=2)
    _save(fig, path)


def plot_learning_curves(curves: dict[str, list[tuple[int, float, float]]], path: Path, title: str = "") -> None:
    """Eval loss against step and against training wall-clock, one line per point."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    later = [loss for curve in curves.values() for _, _, loss in curve[1:]]
    for label, curve in curves.items():
        for ax, index in zip(axes, (0, 1)):
            ax.plot([c[index] for c in curve], [c[2] for c in curve], marker=".", label=label)
    for ax, xlabel in zip(axes, ("training step", "training wall-clock (s)")):
        ax.set(xlabel=xlabel, ylabel="eval spectral loss", title=title)
        ax.grid(alpha=0.3)
    if later:  # the untrained step-0 losses are off the scale of the rest
        axes[0].set_ylim(min(later) * 0.97, max(later) * 1.03)
    axes[1].legend(fontsize=7)
    _save(fig, path)

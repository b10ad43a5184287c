"""ddsp's dataset statistics of prepared records, as JSON and as ddsp's pickle."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .. import ddsp_api
from ..atomic import atomic_path, write_json
from ..locations import location
from ..store.artifacts import DatasetMeta
from ..store.datasets import DatasetFiles
from .power import compute_power
from .reader import read_split

TRIM_END = 20  # ddsp leaves the last frames of each example out of its statistics


def compute_statistics(dataset_dir: Path, metadata: DatasetMeta, split: str = "train") -> dict:
    """The statistics of `ddsp.training.postprocessing.compute_dataset_statistics` on one
    split, with the same keys, definitions and ddsp's own note detection and quantile
    transform, but streamed and without TensorFlow's reader: it keeps frames, not audio
    (ddsp's keeps every example's audio, 0.8 GB for an hour of audio at a 1 s hop), and
    takes the power in NumPy. Equal to ddsp's function (tests/test_prepare.py). Examples
    in ddsp's reading order, since ddsp's quantile fit subsamples (above 1e5 note frames)
    with NumPy's global generator, seeded here so the statistics are reproducible."""
    if metadata.counts.of(split) == 0:
        raise ValueError(f"{dataset_dir}: no {split} examples to compute statistics on")
    frames: dict[str, list] = {"f0": [], "f0_conf": [], "loudness": [], "power": []}
    for example in read_split(dataset_dir, split):
        power = compute_power(example["audio_16k"], metadata.frame_rate)
        for key, value in (("f0", example["f0_hz"]), ("f0_conf", example["f0_confidence"]),
                           ("loudness", example["loudness_db"]), ("power", power)):
            frames[key].append(value[:-TRIM_END])
    postprocessing = ddsp_api.postprocessing()  # imports TensorFlow; its pickle holds ddsp's class
    f0, f0_conf, loudness, power = (np.stack(frames[k]) for k in ("f0", "f0_conf", "loudness", "power"))
    pitch = np.asarray(postprocessing.hz_to_midi(f0))
    mask_on, _ = postprocessing.detect_notes(loudness, f0_conf)
    mask_on = mask_on | ~mask_on.any(axis=1, keepdims=True)  # an example without notes counts whole
    np.random.seed(0)
    stats = {"quantile_transform": postprocessing.fit_quantile_transform(loudness, mask_on)}
    for name, values in (("pitch", pitch), ("power", power), ("loudness", loudness)):
        stats.update(_summary(values, name))
        stats.update(_summary(values, f"{name}_note", mask_on))
    return stats


def _summary(values: np.ndarray, name: str, mask: np.ndarray | None = None) -> dict:
    """Mean, extremes and std of the (masked) frames, and the mean over examples of each
    example's extremes."""
    if mask is None:
        mask = np.ones(values.shape, bool)
    selected = values[mask]
    examples = [v[m] for v, m in zip(values, mask) if m.any()]
    return {f"mean_{name}": np.mean(selected), f"max_{name}": np.max(selected), f"min_{name}": np.min(selected),
            f"mean_max_{name}": np.mean([e.max() for e in examples]),
            f"mean_min_{name}": np.mean([e.min() for e in examples]), f"std_{name}": np.std(selected)}


def statistics_json(stats: dict) -> dict:
    """Plain numbers; the quantile transform as its quantiles and reference levels."""
    out = {k: float(v) for k, v in stats.items() if k != "quantile_transform"}
    transform = stats["quantile_transform"]
    out["loudness_quantiles"] = {
        "quantiles": np.asarray(transform.quantiles_).ravel().tolist(),
        "references": np.asarray(transform.references_).ravel().tolist(),
    }
    return out


def write_statistics(stats: dict, dataset_dir: Path) -> None:
    files = DatasetFiles(location(dataset_dir))
    write_json(files.statistics, statistics_json(stats))
    with atomic_path(files.statistics_pickle) as tmp, open(tmp, "wb") as f:
        pickle.dump(stats, f)

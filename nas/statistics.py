"""ddsp's dataset statistics of prepared records, as JSON and as ddsp's pickle."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_json
from .ddsp_import import ddsp_module
from .records import file_pattern


def record_provider(dataset_dir: Path, split: str, metadata: dict):
    """ddsp's own TFRecordProvider over one split, configured from dataset.json."""
    data = ddsp_module("ddsp.training.data")
    secs = metadata["example_secs"]
    return data.TFRecordProvider(
        file_pattern=str(dataset_dir / file_pattern(split)),
        # ddsp multiplies seconds by the rate for a shape: whole seconds must be ints.
        example_secs=int(secs) if float(secs).is_integer() else secs,
        sample_rate=metadata["sample_rate"],
        frame_rate=metadata["frame_rate"],
        centered=metadata["centered"],
    )


def compute_statistics(dataset_dir: Path, metadata: dict, split: str = "train") -> dict:
    """`ddsp.training.postprocessing.compute_dataset_statistics` on one split.

    Batches of one: ddsp drops a final partial batch, which would drop examples. Its
    loudness quantile fit subsamples with NumPy's global generator: seeded here so the
    statistics are reproducible."""
    if metadata["counts"][split] == 0:
        raise ValueError(f"{dataset_dir}: no {split} examples to compute statistics on")
    postprocessing = ddsp_module("ddsp.training.postprocessing")
    np.random.seed(0)
    return postprocessing.compute_dataset_statistics(record_provider(dataset_dir, split, metadata), batch_size=1)


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
    write_json(dataset_dir / "statistics.json", statistics_json(stats))
    with atomic_path(dataset_dir / "dataset_statistics.pkl") as tmp, open(tmp, "wb") as f:
        pickle.dump(stats, f)

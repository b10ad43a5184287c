"""The data half without an orchestrator: config -> published, versioned dataset folder.

The Prefect flow runs the same stages as separate tasks; this is the plain-Python
path (benchmarks, notebooks). Every stage is a function of `nas.dataset`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .config import DatasetConfig
from .dataset import (Layout, build_records, dataset_version, is_published, metadata, publish, scan_sources,
                      write_manifest)
from .features_table import read_features
from .plots import plot_distributions, plot_tracks
from .statistics import compute_statistics, write_statistics

log = logging.getLogger("nas.prepare")


def finish_dataset(config: DatasetConfig, sources, layout: Layout) -> Path:
    """Records, manifest, statistics and plots in the staging folder, then publish."""
    summary = build_records(config, sources, layout)
    write_manifest(sources, layout.staging / "manifest.parquet")
    meta = metadata(config, layout, sources, summary)
    write_statistics(compute_statistics(layout.staging, meta), layout.staging)
    features = read_features(layout.staging / "features.parquet")
    plot_distributions(features, layout.staging / "distributions.png")
    plot_tracks(features, layout.staging / "tracks.png")
    return publish(layout, meta)


def prepare_dataset(config: DatasetConfig, base: Path, root: Path) -> Path:
    """Prepare (or find, if unchanged) the dataset a config describes."""
    sources = scan_sources(config, base)
    if not any(s.status == "ok" for s in sources):
        raise ValueError(f"{config.name}: no usable audio among {len(sources)} files")
    layout = Layout(root, config.name, dataset_version(config, sources))
    if is_published(layout):
        log.info("dataset %s version %s is up to date: %s", config.name, layout.version, layout.final)
        return layout.final
    return finish_dataset(config, sources, layout)

"""The data half as stages: config -> published, versioned dataset folder.

The Prefect flow runs each stage as its own task; `prepare_dataset` runs them in order
without an orchestrator (benchmarks, notebooks). Stages write into the staging folder
and are safe to repeat.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from .atomic import file_lock
from .audio import SourceFile
from .config import DatasetConfig
from .dataset import build_records, dataset_version, metadata, publish, scan_sources, write_manifest
from .features_table import read_features
from .plots import plot_distributions, plot_tracks
from .statistics import compute_statistics, statistics_json, write_statistics
from .store.datasets import DatasetLayout

log = logging.getLogger("nas.prepare")


def review_stage(sources: list[SourceFile], layout: DatasetLayout) -> list[SourceFile]:
    """Flag usable sources whose features say they are not one melodic line (chords,
    noise): they are kept, as odd-but-usable audio is, and the manifest says so."""
    from .features import POLYPHONIC_SHARE, unclear_pitch_share

    features = read_features(layout.staged.features)
    reviewed = []
    for source in sources:
        frames = features[features["path"] == source.path]
        unclear = unclear_pitch_share(frames["f0_confidence"], frames["loudness_db"]) if len(frames) else None
        if unclear is not None and unclear > POLYPHONIC_SHARE:
            flag = f"not monophonic? (pitch unclear on {unclear:.0%} of sounding frames)"
            source = replace(source, flags=[*source.flags, flag])
            log.warning("%s: %s", source.path, flag)
        reviewed.append(source)
    return reviewed


def statistics_stage(config: DatasetConfig, sources: list[SourceFile], layout: DatasetLayout, summary: dict) -> dict:
    """ddsp's statistics of the train split, written as JSON and pickle; returns the JSON."""
    stats = compute_statistics(layout.staging, metadata(config, layout, sources, summary))
    write_statistics(stats, layout.staging)
    return statistics_json(stats)


def plots_stage(layout: DatasetLayout) -> None:
    features = read_features(layout.staged.features)
    plot_distributions(features, layout.staged.distributions_plot)
    plot_tracks(features, layout.staged.tracks_plot)


def publish_stage(config: DatasetConfig, sources: list[SourceFile], layout: DatasetLayout, summary: dict) -> Path:
    """Manifest and dataset.json last, then the staging folder is renamed into place."""
    write_manifest(sources, layout.staged.manifest)
    return publish(layout, metadata(config, layout, sources, summary))


def locate(config: DatasetConfig, sources: list[SourceFile], root: Path) -> DatasetLayout:
    if not any(s.status == "ok" for s in sources):
        raise ValueError(f"{config.name}: no usable audio among {len(sources)} files")
    return DatasetLayout(root, config.name, dataset_version(config, sources))


def prepare_dataset(config: DatasetConfig, base: Path, root: Path) -> Path:
    """Prepare (or find, if unchanged) the dataset a config describes."""
    sources = scan_sources(config, base)
    layout = locate(config, sources, root)
    with file_lock(layout.lock, lambda: log.info("another run is preparing %s version %s; waiting for it",
                                                  layout.name, layout.version)):
        if layout.is_published():
            log.info("dataset %s version %s is up to date: %s", config.name, layout.version, layout.final)
            return layout.final
        summary = build_records(config, sources, layout)
        sources = review_stage(sources, layout)
        statistics_stage(config, sources, layout, summary)
        plots_stage(layout)
        return publish_stage(config, sources, layout, summary)

"""The data half as stages: config -> published, versioned dataset folder.

`prepare_dataset` is the one sequence of them. It runs each stage through `run`: here
directly (tests, benchmarks, notebooks), or as a Prefect task each (`tasks.prepare`,
which the `prepare` flow passes). Stages write into the staging folder and are safe to
repeat; a stage's `done` says whether its product is already there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..atomic import file_lock
from ..config import DatasetConfig
from ..locations import is_remote
from ..store.artifacts import RecordsSummary
from ..store.cache import records_copy
from ..store.datasets import DatasetLayout
from .audio import SourceFile
from .dataset import build_records, dataset_version, local_features, metadata, publish, scan_sources, write_manifest
from .features_table import read_features
from .statistics import compute_statistics, statistics_json, write_statistics

log = logging.getLogger("nas.prepare")


def review(sources: list[SourceFile], layout: DatasetLayout) -> list[SourceFile]:
    """Flag usable sources whose features say they are not one melodic line (chords,
    noise): they are kept, as odd-but-usable audio is, and the manifest says so."""
    from .features import POLYPHONIC_SHARE, unclear_pitch_share

    features = read_features(local_features(layout))
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


def statistics(config: DatasetConfig, sources: list[SourceFile], layout: DatasetLayout,
               summary: RecordsSummary) -> dict:
    """ddsp's statistics of the train split, written as JSON and pickle; returns the JSON. (A
    bucket's records are read from this machine's copy, which the records stage made.)"""
    records = records_copy(layout.name, layout.version) if is_remote(layout.staging) else layout.staging
    stats = compute_statistics(records, metadata(config, layout, sources, summary))
    write_statistics(stats, layout.staging)
    return statistics_json(stats)


def plots(layout: DatasetLayout) -> None:
    from ..plots import plot_distributions, plot_tracks  # matplotlib: ~1 s of a cached run's imports

    features = read_features(local_features(layout))
    plot_distributions(features, layout.staged.distributions_plot)
    plot_tracks(features, layout.staged.tracks_plot)


def publish_dataset(config: DatasetConfig, sources: list[SourceFile], layout: DatasetLayout,
                    summary: RecordsSummary) -> Path:
    """Manifest and dataset.json last, then the staging folder is renamed into place."""
    write_manifest(sources, layout.staged.manifest)
    return publish(layout, metadata(config, layout, sources, summary), summary)


def locate(config: DatasetConfig, sources: list[SourceFile], root: Path) -> DatasetLayout:
    if not any(s.status == "ok" for s in sources):
        raise ValueError(f"{config.name}: no usable audio among {len(sources)} files")
    return DatasetLayout(root, config.name, dataset_version(config, sources))


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable
    done: Callable[[DatasetLayout], bool] | None = None  # its product is in the staging folder


INGEST = Stage("ingest", scan_sources)
RECORDS = Stage("features-and-records", build_records, lambda layout: layout.staged.records_done.exists())
REVIEW = Stage("review-sources", review)
STATISTICS = Stage("statistics", statistics, lambda layout: layout.staged.statistics.exists())
PLOTS = Stage("plots", plots)
PUBLISH = Stage("publish", publish_dataset)
STAGES = (INGEST, RECORDS, REVIEW, STATISTICS, PLOTS, PUBLISH)


def run_here(stage: Stage, *args):
    return stage.run(*args)


def published_dataset(config: DatasetConfig, base: Path, root: Path) -> Path | None:
    """The dataset a config describes if it is already published (its sources scanned and
    hashed, nothing prepared), else None."""
    layout = locate(config, scan_sources(config, base, quiet=True), root)
    return layout.final if layout.is_published() else None


def prepare_dataset(config: DatasetConfig, base: Path, root: Path, run: Callable = run_here,
                    lock: Callable = file_lock) -> Path:
    """Prepare (or find, if unchanged) the dataset a config describes. `lock(path, waiting)`
    guards the version's build (the flow passes one that also holds across machines)."""
    sources = run(INGEST, config, base)
    layout = locate(config, sources, root)
    with lock(layout.lock, lambda: log.info("another run is preparing %s version %s; waiting for it",
                                                  layout.name, layout.version)):
        if layout.is_published():
            log.info("dataset %s version %s is up to date: %s", config.name, layout.version, layout.final)
            return layout.final
        summary = run(RECORDS, config, sources, layout)
        sources = run(REVIEW, sources, layout)
        run(STATISTICS, config, sources, layout, summary)
        run(PLOTS, layout)
        return run(PUBLISH, config, sources, layout, summary)

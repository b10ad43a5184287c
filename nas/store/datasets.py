"""Dataset versions in the data root: `<root>/<name>/<version>/`, built in `<version>.partial/`
and renamed into place once `dataset.json` is written (so a published folder is complete)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from ..locations import is_remote, location
from .artifacts import DatasetMeta, DatasetStatistics

DATASET_FILE = "dataset.json"
STATISTICS_FILE = "statistics.json"


@dataclass(frozen=True)
class DatasetFiles:
    """The files of one dataset folder, staged or published."""

    dir: Path

    @property
    def metadata(self) -> Path:
        """The commit object: what the version is (sources, parameters, counts, records); written last."""
        return self.dir / DATASET_FILE

    @property
    def manifest(self) -> Path:
        """Every source file: its checksum, duration, status and the reason it was skipped."""
        return self.dir / "manifest.parquet"

    @property
    def features(self) -> Path:
        """f0, confidence and loudness of every frame of every used source."""
        return self.dir / "features.parquet"

    @property
    def statistics(self) -> Path:
        """ddsp's dataset statistics (pitch and loudness quantiles, means), as JSON."""
        return self.dir / STATISTICS_FILE

    @property
    def statistics_pickle(self) -> Path:
        """The same statistics as ddsp's own pickle (what ddsp's tools read)."""
        return self.dir / "dataset_statistics.pkl"

    @property
    def records_done(self) -> Path:
        """Written when every record shard is; removed on publishing."""
        return self.dir / ".records-done.json"

    @property
    def distributions_plot(self) -> Path:
        """Histograms of pitch and loudness."""
        return self.dir / "distributions.png"

    @property
    def tracks_plot(self) -> Path:
        """f0 and loudness over time of the first sources."""
        return self.dir / "tracks.png"


@dataclass(frozen=True)
class DatasetLayout:
    root: Path
    name: str
    version: str

    @property
    def final(self) -> Path:
        return self.root / self.name / self.version

    @property
    def staging(self) -> Path:
        """In a bucket, which has no rename, the version's own folder: it is published by
        writing its dataset.json, last (`publish`)."""
        if is_remote(self.root):
            return self.final
        return self.root / self.name / f"{self.version}.partial"

    @property
    def staged(self) -> DatasetFiles:
        return DatasetFiles(self.staging)

    @property
    def lock(self) -> Path:
        """Held while this version is built: a second run of it waits, then finds it published."""
        return self.root / self.name / f".{self.version}.lock"

    def is_published(self) -> bool:
        return DatasetFiles(self.final).metadata.exists()


def wandb_record(dataset_dir: Path) -> Path:
    """Beside a published version: the W&B artifact it was uploaded as, and in which mode."""
    return dataset_dir.parent / f"{dataset_dir.name}.wandb.json"


@functools.lru_cache(maxsize=64)
def _published_text(url: str) -> str:
    return location(url).read_text()


def _read_text(path: Path) -> str:
    """A published version's files never change (the version is their content's hash), so a
    process downloads each from a bucket once; a missing file is not remembered."""
    return _published_text(str(path)) if is_remote(path) else path.read_text()


def load_metadata(dataset_dir: Path) -> DatasetMeta:
    return DatasetMeta.model_validate(json.loads(_read_text(DatasetFiles(location(dataset_dir)).metadata)))


def load_statistics(dataset_dir: Path) -> DatasetStatistics:
    return DatasetStatistics.from_flat(json.loads(_read_text(DatasetFiles(location(dataset_dir)).statistics)))


def published_version(data_root: Path, name: str, version: str) -> Path:
    """The folder of a published version, or FileNotFoundError that says which is missing."""
    folder = DatasetLayout(location(data_root), name, version).final
    if not DatasetFiles(folder).metadata.exists():
        raise FileNotFoundError(f"{folder}: no published dataset {name} {version}")
    return folder


def latest_version(data_root: Path, name: str) -> Path:
    """The most recently published version folder of dataset `name`."""
    published = sorted((p.parent for p in (location(data_root) / name).glob(f"*/{DATASET_FILE}")),
                       key=lambda d: (d / DATASET_FILE).stat().st_mtime)
    if not published:
        raise FileNotFoundError(f"{location(data_root) / name}: no prepared dataset (run `nas prepare` first)")
    return published[-1]


def dataset_names(data_root: Path) -> list[str]:
    """Every dataset with at least one published version."""
    return sorted({p.parent.parent.name for p in location(data_root).glob(f"*/*/{DATASET_FILE}")})


def history_lock(history: Path) -> Path:
    """Held while an evaluation is appended to the history."""
    return history.with_name(f".{history.name}.lock")


def pipeline_lock(data_root: Path, dataset: str) -> Path:
    """Held by a dataset's pipeline: one at a time per dataset."""
    return location(data_root) / dataset / ".pipeline.lock"


def evaluation_history(data_root: Path, dataset: str) -> Path:
    """Every evaluation of every model of a dataset, one row each (regressions flagged)."""
    return location(data_root) / dataset / "evaluations.parquet"

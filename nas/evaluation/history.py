"""The evaluation history of a dataset: one parquet row per evaluation of any model."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from nas.atomic import atomic_path, file_lock
from nas.locations import location
from nas.store.artifacts import Evaluation, HistoryRow
from nas.store.datasets import history_lock
from nas.store.names import METRICS_FILE
from nas.store.tables import read_rows


def read_history(history: Path) -> list[HistoryRow]:
    if not location(history).exists():
        return []
    return [HistoryRow.model_validate(row) for row in read_rows(history)]


def latest_evaluation(history: Path, model_version: str, dataset_version: str) -> HistoryRow | None:
    """The newest history row of this model on this dataset version, if any."""
    same = [r for r in read_history(history)
            if r.model_version == model_version and r.dataset_version == dataset_version]
    return same[-1] if same else None


def finished_evaluation(history: Path, model_version: str, dataset_version: str) -> Evaluation | None:
    """The result of this model's newest evaluation on this dataset version, while it is on disk."""
    done = latest_evaluation(history, model_version, dataset_version)
    metrics = location(done.dir) / METRICS_FILE if done else None
    return Evaluation.load(metrics) if metrics and metrics.exists() else None


def previous_model(history: Path, model_version: str) -> HistoryRow | None:
    """The newest history row of another model of this dataset: what the new one replaces."""
    others = [r for r in read_history(history) if r.model_version != model_version]
    return others[-1] if others else None


def append_history(history: Path, result: Evaluation, lock: Callable = file_lock) -> None:
    """`lock(path)`: guards the read and rewrite (the flows pass one that holds across machines)."""
    history = location(history)
    with lock(history_lock(history)):  # evaluations of other runs append too
        rows = read_history(history) + [HistoryRow.of(result)]
        with atomic_path(history) as tmp:
            pq.write_table(pa.Table.from_pylist([r.model_dump() for r in rows]), tmp)

"""The run's metrics as rows, kept in `metrics.parquet` (rewritten atomically)."""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from nas.atomic import atomic_path
from nas.store.artifacts import MetricsRow

SCHEMA = pa.schema([(f.name, pa.int64() if f.name == "step" else pa.float64()) for f in fields(MetricsRow)])


class MetricsLog:
    def __init__(self, path: Path, resume_step: int):
        """Rows already on disk up to `resume_step` are kept: a resumed run repeats the steps
        after its checkpoint, so their rows are logged again."""
        self.path = path
        self.rows: list[MetricsRow] = []
        if path.exists() and resume_step > 0:
            self.rows = [r for r in MetricsRow.read(path) if r.step <= resume_step]

    def add(self, step: int, **figures: float) -> None:
        self.rows.append(MetricsRow(step=int(step), **{k: float(v) for k, v in figures.items()}))

    def write(self) -> None:
        table = pa.Table.from_pylist([asdict(r) for r in self.rows], schema=SCHEMA)
        with atomic_path(self.path) as tmp:
            pq.write_table(table, tmp)

    def logged(self, column: str) -> list[float]:
        """The values of a column on the rows that have one (eval and train rows alternate)."""
        return [value for r in self.rows if math.isfinite(value := getattr(r, column))]

    def last(self, column: str) -> float:
        values = self.logged(column)
        return values[-1] if values else float("nan")

    def first(self, column: str) -> float:
        values = self.logged(column)
        return values[0] if values else float("nan")

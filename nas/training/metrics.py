"""The run's metrics as rows, kept in `metrics.parquet` (rewritten atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nas.atomic import atomic_path
from nas.store.tables import read_rows

COLUMNS = ("step", "loss", "eval_loss", "grad_norm", "learning_rate", "steps_per_s", "elapsed_s")


class MetricsLog:
    def __init__(self, path: Path, resume_step: int):
        """Rows already on disk up to `resume_step` are kept: a resumed run repeats the steps
        after its checkpoint, so their rows are logged again."""
        self.path = path
        self.rows: list[dict] = []
        if path.exists() and resume_step > 0:
            self.rows = [r for r in read_rows(path) if r["step"] <= resume_step]

    def add(self, row: dict) -> None:
        self.rows.append({c: float(row.get(c, np.nan)) if c != "step" else int(row["step"]) for c in COLUMNS})

    def write(self) -> None:
        table = pa.Table.from_pylist(self.rows, schema=pa.schema(
            [("step", pa.int64())] + [(c, pa.float64()) for c in COLUMNS[1:]]))
        with atomic_path(self.path) as tmp:
            pq.write_table(table, tmp)

    def logged(self, column: str) -> list[float]:
        """The values of a column on the rows that have one (eval and train rows alternate)."""
        return [r[column] for r in self.rows if np.isfinite(r[column])]

    def last(self, column: str) -> float:
        values = self.logged(column)
        return values[-1] if values else float("nan")

    def first(self, column: str) -> float:
        values = self.logged(column)
        return values[0] if values else float("nan")

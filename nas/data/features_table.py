"""features.parquet: frame-level f0, confidence, loudness and power of every prepared chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_path
from ..store.tables import parquet_bytes
from .records import FRAME_KEYS

_COLUMNS = ("time_s", *FRAME_KEYS)


def write_features(chunk_rows: list[dict], path: Path) -> None:
    """One row per frame: path, source_sha256, chunk, split, time_s and the features."""
    columns: dict[str, list] = {k: [] for k in ("path", "source_sha256", "chunk", "split", *_COLUMNS)}
    for row in chunk_rows:
        n = len(row["f0_hz"])
        for k in ("path", "source_sha256", "chunk", "split"):
            columns[k].append(np.repeat(np.array([row[k]]), n))
        for k in _COLUMNS:
            columns[k].append(np.asarray(row[k], dtype=np.float64 if k == "time_s" else np.float32))
    table = pa.table({k: np.concatenate(v) if v else [] for k, v in columns.items()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_features(path: Path):
    return pq.read_table(parquet_bytes(path)).to_pandas()  # a local file or a bucket's object

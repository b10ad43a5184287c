"""Parquet tables of the data root read as rows."""

from __future__ import annotations

from pathlib import Path


def read_rows(path: Path) -> list[dict]:
    """A parquet file's rows. Through `ParquetFile`, not `pq.read_table`: that goes through
    pyarrow.dataset, which imports pandas (2.4 s of a cached `nas run`), for one small file."""
    import pyarrow.parquet as pq

    with path.open("rb") as f:  # a local file or a bucket's object
        return pq.ParquetFile(f).read().to_pylist()

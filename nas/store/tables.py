"""Parquet tables of the data root read as rows."""

from __future__ import annotations

from pathlib import Path


def parquet_bytes(path: Path):
    """A local file's or a bucket's object's bytes for pyarrow, read here. Given a bucket's
    Python file object instead, pyarrow's C++ threads read it, and one left at the
    interpreter's exit aborts the process ("terminate called without an active exception",
    apache/arrow#34314): a `nas status` on a bucket did, once, after its work."""
    import pyarrow as pa

    return pa.BufferReader(path.read_bytes())


def read_rows(path: Path) -> list[dict]:
    """A parquet file's rows. Through `ParquetFile`, not `pq.read_table`: that goes through
    pyarrow.dataset, which imports pandas (2.4 s of a cached `nas run`), for one small file."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(parquet_bytes(path)).read().to_pylist()

"""This machine's cache of a bucket's data root: `NAS_CACHE_DIR` (default `~/.cache/nas`).

TensorFlow 2.21 cannot open `s3://`, so a machine that trains, evaluates or exports a
dataset version from a bucket first stages its records here:

    <cache>/datasets/<name>/<version>/   dataset.json, statistics.json, the record shards

A staged file is trusted only while its size and sha256 match what the version's
dataset.json (the bucket's commit object) lists; otherwise it is fetched again. Files are
shared by every run on the machine, and the least recently used go first once the cache
holds more than `NAS_CACHE_BYTES` (default 20 GB).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

from ..atomic import atomic_path
from .artifacts import DatasetMeta, FileDigest
from .datasets import DATASET_FILE, DatasetFiles

log = logging.getLogger(__name__)
DEFAULT_LIMIT = 20 * 10**9


def cache_dir() -> Path:
    return Path(os.environ.get("NAS_CACHE_DIR") or Path.home() / ".cache" / "nas").expanduser().resolve()


def cache_limit() -> int:
    return int(os.environ.get("NAS_CACHE_BYTES") or DEFAULT_LIMIT)


def wandb_dir(root: Path) -> Path:
    """Where W&B keeps its local run files: beside a local data root's datasets, and in this
    machine's cache for a bucket (W&B writes only local files)."""
    from ..locations import is_remote

    return cache_dir() / "wandb" if is_remote(root) else root / "wandb"


def stage_dataset(dataset_dir: Path) -> Path:
    """A published dataset version in a bucket as a local folder that TensorFlow reads: each
    file fetched unless a copy of the same size and sha256 is already here. dataset.json is
    written last, so the folder is complete whenever it is there."""
    meta = DatasetMeta.load(DatasetFiles(dataset_dir).metadata)
    if meta.objects is None:
        raise ValueError(f"{dataset_dir}: dataset.json lists no objects to stage (not published in a bucket)")
    local = cache_dir() / "datasets" / meta.name / meta.version
    started, fetched = time.monotonic(), 0
    for name, digest in sorted(meta.objects.items()):
        target = local / name
        if not _intact(target, digest):
            if target.exists():
                log.warning("%s: cached copy does not match dataset.json (size or sha256); fetching it again", target)
            _fetch(dataset_dir / name, target, digest)
            fetched += digest.bytes
        os.utime(target)  # used now: the last to go when the cache is trimmed
    meta.save(local / DATASET_FILE)
    log.info("staged %s %s in %s (%.1f MB fetched) in %.2f s", meta.name, meta.version, local, fetched / 1e6,
             time.monotonic() - started)
    trim(keep=local)
    return local


def _intact(path: Path, digest: FileDigest) -> bool:
    if not path.is_file() or path.stat().st_size != digest.bytes:
        return False
    return _sha256(path) == digest.sha256


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            sha.update(block)
    return sha.hexdigest()


def _fetch(source: Path, target: Path, digest: FileDigest) -> None:
    """Download one object, checked before it takes its name."""
    with atomic_path(target) as tmp:
        source.fs.get_file(source.path, str(tmp))
        if tmp.stat().st_size != digest.bytes or _sha256(tmp) != digest.sha256:
            raise OSError(f"{source}: downloaded object does not match dataset.json (size or sha256)")


def trim(keep: Path | None = None, limit: int | None = None) -> list[Path]:
    """Remove the least recently used staged files (never those under `keep`) until the
    datasets in the cache hold at most `limit` bytes; returns what went."""
    limit = cache_limit() if limit is None else limit
    root = cache_dir() / "datasets"
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    total = sum(p.stat().st_size for p in files)
    removed = []
    for path in sorted(files, key=lambda p: p.stat().st_mtime):
        if total <= limit:
            break
        if keep is not None and keep in path.parents:
            continue
        if path.name != DATASET_FILE:  # its version's files go first; the folder says what it held
            total -= path.stat().st_size
            path.unlink()
            removed.append(path)
    for path in removed:  # a version missing any file is not complete: its dataset.json goes too
        (path.parent / DATASET_FILE).unlink(missing_ok=True)
    return removed

"""This machine's cache of a bucket's data root: `NAS_CACHE_DIR` (default `~/.cache/nas`).

TensorFlow 2.21 cannot open `s3://`, so a machine that trains, evaluates or exports a
dataset version from a bucket first stages its records here:

    <cache>/audio/<sha256><suffix>       a bucket's audio file, fetched once by ingestion and
                                         read by the chunks that this machine prepares
    <cache>/datasets/<name>/<version>/   dataset.json, statistics.json, the record shards
    <cache>/folders/<url>/               a model/ folder, fetched for the process that reads it
    <cache>/checkpoints/<url>/           a run's checkpoints, saved here and uploaded after each
    <cache>/xla/<machine>/               XLA's compiled training steps, for any data root (`nas.machine`)

A staged file is trusted only while its size and sha256 match what the version's
dataset.json (the bucket's commit object) lists; otherwise it is fetched again (audio is
named by its sha256). Files are shared by every run on the machine, and the least recently
used audio, records and compiled steps go first once they hold more than `NAS_CACHE_BYTES`
(default 20 GB).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..atomic import atomic_path
from ..locations import is_remote, sha256_file
from ..machine import cache_dir, compiled_steps_dir
from .artifacts import DatasetMeta, FileDigest
from .datasets import DATASET_FILE, DatasetFiles

log = logging.getLogger(__name__)
DEFAULT_LIMIT = 20 * 10**9


def cache_limit() -> int:
    return int(os.environ.get("NAS_CACHE_BYTES") or DEFAULT_LIMIT)


def wandb_dir(root: Path) -> Path:
    """Where W&B keeps its local run files: beside a local data root's datasets, and in this
    machine's cache for a bucket (W&B writes only local files)."""
    return cache_dir() / "wandb" if is_remote(root) else root / "wandb"


_STAGED: dict[str, Path] = {}  # checked once per process: a run reads its records several times


def audio_copy(source: Path) -> tuple[Path, str]:
    """A bucket's audio file fetched into the cache (one download for its hash, its checks and
    this machine's chunks); (the copy, its sha256)."""
    folder = cache_dir() / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=folder)  # named by its hash once it is whole
    os.close(fd)
    try:
        source.fs.get_file(source.path, tmp)
        sha256 = sha256_file(Path(tmp))
        copy = folder / f"{sha256}{source.suffix.lower()}"
        os.replace(tmp, copy)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return copy, sha256


def cached_audio(source: Path, sha256: str) -> Path:
    """This machine's copy of an audio file if it has one (named by its content), else the file."""
    if not is_remote(source):
        return source
    copy = cache_dir() / "audio" / f"{sha256}{source.suffix.lower()}"
    return copy if copy.is_file() else source


def local_records(dataset_dir: Path) -> Path:
    """A dataset folder TensorFlow can open: a local one as it is, a bucket's staged here."""
    if not is_remote(dataset_dir):
        return dataset_dir
    if str(dataset_dir) not in _STAGED:
        _STAGED[str(dataset_dir)] = stage_dataset(dataset_dir)
    return _STAGED[str(dataset_dir)]


def local_folder(folder: Path) -> Path:
    """A small folder (a run's model/) TensorFlow can open: a local one as it is, a bucket's
    fetched whole into the cache (what was there before is replaced)."""
    if not is_remote(folder):
        return folder
    local = cache_dir() / "folders" / url_key(folder)
    _copy_folder(folder, local)
    return local


def _copy_folder(remote: Path, local: Path) -> None:
    """`local` made a copy of every object under `remote` (what it held before goes)."""
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir(parents=True)
    for name in remote.fs.find(remote.path):
        target = local / name.removeprefix(remote.path).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        remote.fs.get_file(name, str(target))


def url_key(path: Path) -> Path:
    """A bucket's URL as a relative local path: s3://bucket/a/b -> s3/bucket/a/b."""
    return Path(path.protocol) / path.path


class Checkpoints:
    """Where TensorFlow saves a run's checkpoints: the run's own folder on a local root; for a
    bucket, a local folder that starts as a copy of the bucket's and is uploaded after every
    save (`push`), so a run killed on one machine resumes on another from its latest one."""

    STATE = "checkpoint"  # TensorFlow's record of the latest checkpoint: uploaded last

    def __init__(self, folder: Path):
        self.remote = folder if is_remote(folder) else None
        self.dir = cache_dir() / "checkpoints" / url_key(folder) if self.remote else folder
        if self.remote:
            _copy_folder(folder, self.dir)  # the bucket's checkpoints are the run's
        self._sent = self._files()

    def _files(self) -> dict[str, tuple[int, int]]:
        if not self.dir.exists():
            return {}
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in self.dir.iterdir()}

    def push(self) -> None:
        """Upload what the last save wrote, the state file last, then drop what it pruned."""
        if not self.remote:
            return
        now = self._files()
        changed = sorted(name for name, stamp in now.items() if self._sent.get(name) != stamp)
        for name in sorted(changed, key=lambda n: n == self.STATE):
            self.remote.fs.put_file(str(self.dir / name), f"{self.remote.path}/{name}")
        for name in sorted(set(self._sent) - set(now)):
            self.remote.fs.rm_file(f"{self.remote.path}/{name}")
        self._sent = now


def stage_dataset(dataset_dir: Path) -> Path:
    """A published dataset version in a bucket as a local folder that TensorFlow reads: each
    file fetched unless a copy of the same size and sha256 is already here. dataset.json is
    written last, so the folder is complete whenever it is there."""
    meta = DatasetMeta.load(DatasetFiles(dataset_dir).metadata)
    if meta.objects is None:
        raise ValueError(f"{dataset_dir}: dataset.json lists no objects to stage (not published in a bucket)")
    local = records_copy(meta.name, meta.version)
    started, fetched = time.monotonic(), 0
    for name, digest in sorted(meta.objects.items()):
        target = local / name
        if not _intact(target, digest):
            if target.exists():
                log.warning("%s: cached copy does not match dataset.json (size or sha256); fetching it again", target)
            fetch(dataset_dir / name, target, digest)
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
    return sha256_file(path) == digest.sha256


def records_copy(name: str, version: str) -> Path:
    """This machine's copy of a dataset version's records."""
    return cache_dir() / "datasets" / name / version


def fetch(source: Path, target: Path, digest: FileDigest | None = None) -> None:
    """Download one object; with a digest, checked before it takes its name."""
    with atomic_path(target) as tmp:
        source.fs.get_file(source.path, str(tmp))
        if digest and (tmp.stat().st_size != digest.bytes or sha256_file(tmp) != digest.sha256):
            raise OSError(f"{source}: downloaded object does not match dataset.json (size or sha256)")


def trim(keep: Path | None = None, limit: int | None = None) -> list[Path]:
    """Remove the least recently used staged records, audio and compiled steps (never those
    under `keep`) until they hold at most `limit` bytes; returns what went."""
    limit = cache_limit() if limit is None else limit
    roots = [cache_dir() / "datasets", cache_dir() / "audio", compiled_steps_dir()]
    files = [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]
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

"""Writes that are never seen half-done: write to a temporary name, then rename."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .locations import create_new, is_remote

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; renamed onto `path` only on success. For an
    object in a bucket (a UPath), a local temporary file uploaded in one put on success: an
    object appears whole or not at all."""
    if is_remote(path):
        with tempfile.TemporaryDirectory(prefix="nas-upload-") as folder:
            tmp = Path(folder) / path.name
            yield tmp
            path.fs.put_file(str(tmp), path.path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; published files are shared
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def staging_dir(final: Path) -> Path:
    """An empty `<final>.partial` beside `final`, for a folder published with `replace_dir`;
    for a folder in a bucket, an empty local folder that `replace_dir` uploads."""
    if is_remote(final):
        return Path(tempfile.mkdtemp(prefix="nas-staging-"))
    staging = final.with_name(final.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def replace_dir(staging: Path, final: Path, commit: str) -> bool:
    """Put a fully written folder in place of `final` (old contents swapped out whole).

    In a bucket, which has no rename: the old commit object (`commit`, the file that says
    the folder is complete) goes first, so no reader takes old and new files for one
    folder; then the new files; then the new commit object, last, with a conditional put.
    False if another writer's commit object got there first (its folder stands)."""
    if is_remote(final):
        (final / commit).unlink(missing_ok=True)
        fresh = {p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()}
        for old in (final.fs.find(final.path) if final.exists() else []):
            if old.removeprefix(final.path).lstrip("/") not in fresh:
                final.fs.rm_file(old)
        for name in sorted(fresh - {commit}):
            final.fs.put_file(str(staging / name), f"{final.path}/{name}")
        published = create_new(final / commit, (staging / commit).read_bytes())
        shutil.rmtree(staging)
        return published
    if final.exists():
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old)
    else:
        os.replace(staging, final)
    return True


@contextmanager
def file_lock(path: Path, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the block; another process
    asking for it waits (after calling `waiting`). The kernel drops the lock of a killed
    process, so a crash never leaves it stuck. (flock: local file systems, and NFS v4.)
    A bucket has no flock: there the flows hold a Prefect lease instead, and correctness
    rests on the commit objects' conditional writes, not on the lock."""
    if is_remote(path):
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                waiting()
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def remove_tree(path: Path) -> None:
    """Remove a folder and what it holds, or every object under a bucket's prefix."""
    if is_remote(path):
        if path.exists():
            path.fs.rm(path.path, recursive=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def json_bytes(data) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, default=_plain) + "\n").encode()


def write_json(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(json_bytes(data))


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path) or is_remote(value):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")

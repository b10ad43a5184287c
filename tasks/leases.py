"""Locks that hold across machines. A lock file in a local data root is a `flock`; one in a
bucket, where there is no flock, is a Prefect global concurrency limit of one slot named for
it, held as a lease: renewed while its holder lives, lapsed within `LEASE_S` when it dies.
Correctness never rests on these (commit objects are conditional writes); they save work."""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Callable, Iterator

from nas.atomic import file_lock
from nas.locations import is_remote

LEASE_S = 60  # the server refuses less


def lock(path: Path, waiting: Callable[[], None] | None = None) -> AbstractContextManager[None]:
    """`nas.atomic.file_lock` where `path` is local; a Prefect lease named for it in a bucket."""
    return lease(lease_name(path), waiting) if is_remote(path) else file_lock(path, waiting)


def lease_name(path: Path) -> str:
    """A limit's name: what the lock guards, and a digest of its whole URL (names are short)."""
    return f"nas-{path.name.strip('.')}-{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"


@contextmanager
def lease(name: str, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            held = client.read_global_concurrency_limit_by_name(name).active_slots
        except ObjectNotFound:  # first use; of two racing to create it, one finds it made
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                pass
            held = 0
    if waiting and held:
        waiting()
    with concurrency(name, occupy=1, lease_duration=LEASE_S, strict=True):
        yield

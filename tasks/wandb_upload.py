"""W&B: the prepared dataset as an artifact of type `dataset`.

Online when WANDB_API_KEY is set (or mode says so), offline otherwise; offline runs
are written under the data root and can be uploaded later with `wandb sync`. The key
is read by wandb from the environment and never passed, logged or stored by us.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from nas.config import WandbConfig
from nas.locations import is_remote
from nas.store.artifacts import DatasetMeta, WandbRecord

from .wandb import open_run, resolve_mode

log = logging.getLogger(__name__)


def add_folder(artifact, folder: Path) -> None:
    """A local folder's files as the artifact's own copies; a bucket's as references to its
    objects (checksummed by their ETags), not second copies."""
    if is_remote(folder):
        artifact.add_reference(f"{folder}/", checksum=True)
    else:
        artifact.add_dir(str(folder), policy="immutable")  # published folders never change


def upload_dataset(dataset_dir: Path, meta: DatasetMeta, config: WandbConfig, wandb_dir: Path) -> WandbRecord:
    """Log the dataset folder as artifact `<name>:<version>`; returns where it went. Tries
    `config.attempts` times with doubling back-off, then raises."""
    import wandb

    mode = resolve_mode(config)
    if mode == "disabled":
        return WandbRecord(mode=mode)
    wandb_dir.mkdir(parents=True, exist_ok=True)
    last_error: Exception | None = None
    for attempt in range(1, config.attempts + 1):
        try:
            run = open_run(config, mode, wandb_dir, "prepare-dataset", f"prepare-{meta.name}-{meta.version}",
                           {"dataset": meta.name, "version": meta.version, **meta.parameters})
            artifact = wandb.Artifact(meta.name, type="dataset", metadata=meta.model_dump(mode="json"),
                                      description=f"nas dataset {meta.describe()}")
            add_folder(artifact, dataset_dir)
            run.log_artifact(artifact, aliases=[meta.version, "latest"])
            where = WandbRecord(mode=mode, artifact=f"{meta.name}:{meta.version}", run_dir=run.dir,
                                url=run.url if mode == "online" else None)
            run.finish()
            return where
        except Exception as error:  # network and service errors vary by wandb version
            last_error = error
            if attempt < config.attempts:
                wait = config.backoff_s * 2 ** (attempt - 1)
                log.warning("W&B upload of %s:%s failed (try %d of %d: %s); retrying in %.0f s", meta.name,
                            meta.version, attempt, config.attempts, type(error).__name__, wait)
                time.sleep(wait)
    raise RuntimeError(f"W&B upload of {meta.name}:{meta.version} failed after {config.attempts} attempts: "
                       f"{type(last_error).__name__}: {str(last_error).splitlines()[0][:200]}")

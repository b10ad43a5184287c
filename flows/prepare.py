"""The `prepare` flow: one dataset config -> a published, versioned dataset + W&B artifact."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from flows.worker_runs import WORKER_RUN_HOOKS
from flows.entry import dataset_config
from nas.constants import DEFAULT_DATA_ROOT
from nas.data.dataset import read_manifest
from nas.data.prepare import prepare_dataset
from nas.locations import resolve_root
from nas.store.artifacts import WandbRecord
from nas.store.datasets import wandb_record
from tasks import prepare as t
from tasks.leases import lock
from tasks.wandb import resolve_mode


@flow(name="prepare", **WORKER_RUN_HOOKS)
def prepare(config_path: str, data_root: str = DEFAULT_DATA_ROOT, parsed: dict | None = None) -> str:
    """Ingest, extract features, write TFRecords, compute statistics, upload to W&B."""
    logger = get_run_logger()
    config, base = dataset_config(config_path, parsed)
    root = resolve_root(data_root)
    dataset_dir = prepare_dataset(config, base, root, run=t.run_as_task, lock=lock)
    sources = read_manifest(dataset_dir)  # as published: with the flags the review added
    wandb_info = _upload_once(config, dataset_dir, root, logger)
    t.publish_cards(dataset_dir, sources, wandb_info)
    logger.info("dataset ready: %s", dataset_dir)
    return str(dataset_dir)


def uploaded(config, dataset_dir: Path) -> WandbRecord | None:
    """Where this dataset version went to W&B, if it went in the mode the config asks for now."""
    record = wandb_record(dataset_dir)
    if record.exists():
        info = WandbRecord.model_validate_json(record.read_text())
        if info.mode == resolve_mode(config.wandb):
            return info
    return None


def _upload_once(config, dataset_dir: Path, root: Path, logger) -> WandbRecord:
    """Upload unless this version already went to W&B in the same mode; never fail the flow."""
    info = uploaded(config, dataset_dir)
    if info is not None:
        return info
    state = t.wandb_artifact(config, dataset_dir, root, return_state=True)
    if state.is_failed():
        message = str(state.message or "upload failed")
        logger.warning("W&B upload failed; the dataset is kept locally at %s (%s)", dataset_dir, message)
        return WandbRecord(error=message)
    info = state.result()
    info.save(wandb_record(dataset_dir))
    return info

"""The `prepare` flow: one dataset config -> a published, versioned dataset + W&B artifact."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, get_run_logger

from flows.entry import dataset_config
from nas import dataset as ds
from nas.atomic import file_lock, write_json
from nas.prepare import locate
from tasks import prepare as t
from tasks.wandb import resolve_mode


@flow(name="prepare")
def prepare(config_path: str, data_root: str = "nas-data", parsed: dict | None = None) -> str:
    """Ingest, extract features, write TFRecords, compute statistics, upload to W&B."""
    logger = get_run_logger()
    config, base = dataset_config(config_path, parsed)
    root = Path(data_root).resolve()
    sources = t.scan_sources(config, base)
    layout = locate(config, sources, root)
    with file_lock(layout.lock, lambda: logger.info("another run is preparing %s version %s; waiting for it",
                                                      config.name, layout.version)):
        if layout.is_published():
            logger.info("dataset %s version %s is up to date: %s", config.name, layout.version, layout.final)
            dataset_dir = layout.final
            sources = ds.read_manifest(dataset_dir)
        else:
            staged = layout.staged
            summary = t.build_records.with_options(refresh_cache=not staged.records_done.exists())(
                config, sources, layout)
            sources = t.review_sources(sources, layout)
            t.statistics.with_options(refresh_cache=not staged.statistics.exists())(
                config, sources, layout, summary)
            t.plots(layout)
            dataset_dir = t.publish(config, sources, layout, summary)
    wandb_info = _upload_once(config, dataset_dir, root, logger)
    t.publish_cards(dataset_dir, sources, wandb_info)
    logger.info("dataset ready: %s", dataset_dir)
    return str(dataset_dir)


def _upload_once(config, dataset_dir: Path, root: Path, logger) -> dict:
    """Upload unless this version already went to W&B in the same mode; never fail the flow."""
    record = dataset_dir.parent / f"{dataset_dir.name}.wandb.json"
    if record.exists():
        info = json.loads(record.read_text())
        if info.get("mode") == resolve_mode(config.wandb):
            return info
    state = t.wandb_artifact(config, dataset_dir, root, return_state=True)
    if state.is_failed():
        message = str(state.message or "upload failed")
        logger.warning("W&B upload failed; the dataset is kept locally at %s (%s)", dataset_dir, message)
        return {"error": message}
    info = state.result()
    write_json(record, info)
    return info

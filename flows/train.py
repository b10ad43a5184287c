"""The `train` flow: a prepared dataset + a training recipe -> a trained model
in a versioned run folder, a W&B model artifact and a run card."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.worker_runs import WORKER_RUN_HOOKS
from flows.entry import config_dump, dataset_config
from nas.config.presets import TrainConfig, resolve_training
from nas.constants import DEFAULT_DATA_ROOT
from nas.locations import location, resolve_root
from nas.store.artifacts import Frozen, RunSummary, WandbRecord
from nas.store.cache import wandb_dir
from nas.store.datasets import load_metadata, published_version
from nas.store.runs import run_layout
from tasks import train as t


class TrainedModel(Frozen):
    """What the train flow hands on: the run summary, and where its W&B run went."""

    summary: RunSummary
    wandb: WandbRecord


@flow(name="train", **WORKER_RUN_HOOKS)
def train(config_path: str, dataset_version: str | None = None, data_root: str = DEFAULT_DATA_ROOT,
          recipe: dict | None = None, parsed: dict | None = None, wandb_group: str | None = None) -> TrainedModel:
    """Train with `recipe` (a resolved TrainConfig's dump; default: the config's `training`
    section) on the dataset version given, or on the one the config prepares now (the
    `prepare` flow runs first; unchanged, it is a quick no-op). Re-running continues the
    run from its latest checkpoint. `wandb_group`: the W&B group of the run (default: the
    dataset's name; a sweep's name for its points)."""
    logger = get_run_logger()
    config, _ = dataset_config(config_path, parsed)
    root = resolve_root(data_root)
    if dataset_version is None:
        from flows.prepare import prepare

        dataset_dir = location(prepare(config_path, data_root, config_dump(config)))
    else:
        dataset_dir = published_version(root, config.name, dataset_version)
    train_cfg = TrainConfig.model_validate(recipe) if recipe else resolve_training(config.training)
    layout = run_layout(root, load_metadata(dataset_dir), train_cfg)
    summary, wandb_info = t.train_model(dataset_dir, layout, train_cfg, config.wandb, wandb_dir(root), wandb_group)
    if not (wandb_info.run_dir or wandb_info.error) and layout.wandb.exists():
        wandb_info = WandbRecord.model_validate_json(layout.wandb.read_text())  # trained earlier: where that run went
    else:
        wandb_info.save(layout.wandb)
    if wandb_info.error:
        logger.warning("W&B failed; the model is kept locally at %s (%s)", layout.model, wandb_info.error)
    t.publish_run_card(summary, wandb_info, layout)
    logger.info("model %s ready: %s", summary.model_version, layout.model)
    return TrainedModel(summary=summary, wandb=wandb_info)

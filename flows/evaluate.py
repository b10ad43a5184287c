"""The `evaluate` flow: judge a trained model on a dataset version. By default, the config's
own model on its latest dataset version."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from flows.worker_runs import WORKER_RUN_HOOKS
from flows.entry import dataset_config
from nas.config import DatasetConfig
from nas.config.presets import resolve_training
from nas.constants import DEFAULT_DATA_ROOT
from nas.evaluation.history import finished_evaluation
from nas.locations import resolve_root
from nas.store.artifacts import Evaluation
from nas.store.cache import wandb_dir
from nas.store.datasets import evaluation_history, latest_version, load_metadata, published_version
from nas.store.runs import RunLayout, config_run, find_model
from tasks import evaluate as t

LISTEN = 4  # examples rendered as WAV pairs and plots in the report


def resolve_model(config: DatasetConfig, model_version: str | None, dataset_version: str | None, root: Path,
                  training: dict | None = None) -> tuple[Path, RunLayout]:
    """(dataset folder, run of the model): the given dataset version or the latest; the given
    model version wherever it is, else the config's own model, the run its training section
    (with `training` settings on top, as a command line's) makes on that dataset version."""
    if dataset_version:
        dataset_dir = published_version(root, config.name, dataset_version)
    else:
        dataset_dir = latest_version(root, config.name)
    if model_version:
        return dataset_dir, find_model(root, config.name, model_version)
    return dataset_dir, config_run(root, load_metadata(dataset_dir), resolve_training(config.training, training))


@flow(name="evaluate", **WORKER_RUN_HOOKS)
def evaluate(config_path: str, model_version: str | None = None, dataset_version: str | None = None,
             data_root: str = DEFAULT_DATA_ROOT, parsed: dict | None = None, reuse: bool = False) -> Evaluation:
    """Score a model (default: the config's own, as `nas run` trains it) on a dataset version
    (default: the latest); flags a regression against its previous evaluation there.
    `reuse`: return the newest evaluation of `model_version` on this version, if there is one."""
    logger = get_run_logger()
    config, _ = dataset_config(config_path, parsed)
    root = resolve_root(data_root)
    dataset_dir, layout = resolve_model(config, model_version, dataset_version, root)
    history = evaluation_history(root, config.name)
    done = finished_evaluation(history, model_version, dataset_dir.name) if reuse and model_version else None
    if done:
        logger.info("evaluation %s of %s on %s is reused", done.eval_id, done.model_version, dataset_dir.name)
        return done
    result = t.evaluate_model(layout, dataset_dir, history, LISTEN)
    wandb_info = t.log_evaluation(result, config.wandb, wandb_dir(root))
    t.publish_evaluation(result, wandb_info)
    logger.info("%s; report %s", result.describe(), result.report)
    return result

"""The `evaluate` and `export` flows: judge a trained model on a dataset version, and
export it for deployment. By default, the latest model and dataset version of a config."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, get_run_logger

from nas.config import load_config
from nas.store.datasets import evaluation_history, latest_version, published_version
from nas.store.runs import MODEL_FILE, find_model
from tasks import evaluate as t

LISTEN = 4  # examples rendered as WAV pairs and plots in the report


def resolve_model(config_path: str, model_version: str | None, dataset_version: str | None, data_root: str):
    """(config, data root, dataset folder, run of the model): the given versions or the latest."""
    config, _ = load_config(config_path)
    root = Path(data_root).resolve()
    if dataset_version:
        dataset_dir = published_version(root, config.name, dataset_version)
    else:
        dataset_dir = latest_version(root, config.name)
    return config, root, dataset_dir, find_model(root, config.name, model_version)


@flow(name="evaluate")
def evaluate(config_path: str, model_version: str | None = None, dataset_version: str | None = None,
             data_root: str = "nas-data", listen: int = LISTEN) -> dict:
    """Score a model (default: the latest of the config's dataset) on a dataset version
    (default: the latest); flags a regression against its previous evaluation there."""
    logger = get_run_logger()
    config, root, dataset_dir, layout = resolve_model(config_path, model_version, dataset_version, data_root)
    result = t.evaluate_model(layout, dataset_dir, evaluation_history(root, config.name), listen)
    wandb_info = t.log_evaluation(result, config.wandb, root / "wandb")
    t.publish_evaluation(result, wandb_info)
    logger.info("evaluation %s of %s: spectral loss %.3f, f0 %.1f cents, loudness %.2f dB; report %s/report.html",
                result["eval_id"], result["model_version"], result["metrics"]["spectral_loss"],
                result["metrics"]["f0_mae_cents"], result["metrics"]["loudness_mae_db"], result["dir"])
    return {**result, "wandb": wandb_info}


@flow(name="export")
def export(config_path: str, model_version: str | None = None, data_root: str = "nas-data") -> dict:
    """ONNX, TFLite, int8 ONNX and the CPU engine's weights, with parity figures."""
    config, root, _, layout = resolve_model(config_path, model_version, None, data_root)
    trained_on = json.loads((layout.model / MODEL_FILE).read_text())["dataset"]["version"]
    return t.export(layout, published_version(root, config.name, trained_on))  # calibrates on its training data

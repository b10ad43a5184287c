"""Prefect tasks of the model half: train (resumable), and the run card."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from nas.config import WandbConfig
from nas.config.presets import TrainConfig
from nas.store.artifacts import MetricsRow, RunSummary, WandbRecord
from nas.store.runs import RunLayout, finished_run

from .cards import model_card, table_cell
from .leases import lock
from .wandb_training import WandbTraining


@task(name="train-model")
def train_model(dataset_dir: Path, layout: RunLayout, config: TrainConfig, wandb_config: WandbConfig,
                wandb_dir: Path, wandb_group: str | None = None) -> tuple[RunSummary, WandbRecord]:
    """Train or resume until `config.steps`; W&B gets metrics, samples and the model artifact.
    Returns the run summary and where its W&B run went (no run folder if it was trained before)."""
    callback = WandbTraining(wandb_config, wandb_dir, wandb_group)
    with lock(layout.lock, waiting(layout)):
        summary = finished_run(layout, config.steps)  # seen without loading TensorFlow
        if summary is None:
            from nas.training.loop import train

            try:
                summary = train(dataset_dir, layout, config, callbacks=[callback])
            finally:
                callback.close()
    return summary, callback.info


def waiting(layout: RunLayout):
    logger = get_run_logger()
    return lambda: logger.info("another run is working in %s; waiting for it", layout.dir)


@task(name="run-card")
def publish_run_card(summary: RunSummary, wandb_info: WandbRecord, layout: RunLayout) -> None:
    key = f"model-{summary.dataset.name}"
    create_markdown_artifact(markdown=model_card(summary, wandb_info, layout.loss_plot), key=key,
                             description=f"Model card of {summary.model_version}")
    rows = MetricsRow.read(layout.metrics)
    create_table_artifact(table=[{k: table_cell(v) for k, v in asdict(r).items()} for r in rows[-50:]],
                          key=f"{key}-metrics",
                          description=f"Last logged training metrics of {summary.model_version}")

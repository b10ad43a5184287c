"""Prefect tasks of evaluation: scores to W&B and to Prefect artifacts."""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from nas.config import WandbConfig
from nas.locations import location
from nas.store.artifacts import Evaluation, WandbRecord
from nas.store.cache import local_folder
from nas.store.runs import RunLayout
from nas.store.tables import read_rows

from .cards import evaluation_card, table_cell
from .leases import lock
from .train import waiting
from .wandb import open_run, resolve_mode

log = logging.getLogger(__name__)


@task(name="evaluate-model")
def evaluate_model(layout: RunLayout, dataset_dir: Path, history: Path, listen: int) -> Evaluation:
    from nas.evaluation.evaluate import evaluate

    with lock(layout.lock, waiting(layout)):
        return evaluate(layout.model, dataset_dir, layout.evaluations, history, listen=listen, lock=lock)


@task(name="evaluation-wandb")
def log_evaluation(result: Evaluation, config: WandbConfig, wandb_dir: Path) -> WandbRecord:
    """Summary, per-example table and listening audio as a W&B run of job type `eval`.
    A W&B failure is a warning: the evaluation is on disk either way."""
    mode = resolve_mode(config)
    if mode == "disabled":
        return WandbRecord(mode=mode)
    try:
        import wandb

        run = open_run(config, mode, wandb_dir, "eval", f"eval-{result.model_version}",
                       {"model_version": result.model_version, "dataset": result.dataset.model_dump(),
                        "eval_id": result.eval_id}, group=result.dataset.name)
        rows = read_rows(result.table)
        folder = local_folder(location(result.dir))  # W&B reads local files
        run.log({"eval/examples": wandb.Table(columns=list(rows[0]), data=[list(r.values()) for r in rows]),
                 **{f"listen/{item.example}-{kind}": wandb.Audio(str(folder / getattr(item, kind)))
                    for item in result.listen for kind in ("original", "resynthesis")}})
        run.summary.update({f"eval/{k}": v for k, v in result.metrics.model_dump().items()})
        run.summary["regression"] = result.regression
        info = WandbRecord(mode=mode, run_dir=run.dir, url=run.url if mode == "online" else None)
        run.finish()
        return info
    except Exception as error:  # wandb raises many types
        log.warning("W&B logging of evaluation %s failed (%s: %s); it is kept locally in %s", result.eval_id,
                    type(error).__name__, error, result.dir)
        return WandbRecord(mode=mode, error=f"{type(error).__name__}: {error}")


@task(name="evaluation-artifacts")
def publish_evaluation(result: Evaluation, wandb_info: WandbRecord) -> None:
    dataset = result.dataset.name
    rows = read_rows(result.table)
    create_table_artifact(table=[{k: table_cell(v) for k, v in r.items()} for r in rows], key=f"evaluation-{dataset}",
                          description=f"Per-example scores of {result.model_version} on {dataset} "
                                      f"{result.dataset.version}")
    create_markdown_artifact(markdown=evaluation_card(result, wandb_info, result.report),
                             key=f"evaluation-{dataset}-report",
                             description=f"Evaluation {result.eval_id} of {result.model_version}")

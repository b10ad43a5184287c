"""The `pipeline` flow: one dataset config -> prepared dataset -> trained model ->
evaluation -> export, each stage a subflow that does no work when its product for the
same inputs is already on disk:

- prepare: keyed by the dataset version (sources' bytes + preparation parameters);
- train: keyed by the run id (dataset version + recipe), resumed up to the step budget;
- evaluate: reused when the history holds an evaluation of this model version on this
  dataset version (pass `reevaluate=True` to score again);
- export: reused when `export/export.json` is of this model version.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.evaluate import evaluate, export
from flows.prepare import prepare
from flows.train import train
from nas.atomic import file_lock
from nas.config import load_config
from nas.config.presets import resolve_training
from nas.evaluation.history import latest_evaluation
from nas.evaluation.scores import score_line
from nas.store.datasets import evaluation_history, load_metadata
from nas.store.runs import EXPORT_FILE, METRICS_FILE, REPORT_FILE, RunLayout, load_summary, run_layout


@flow(name="pipeline")
def pipeline(config_path: str, data_root: str = "nas-data", preset: str | None = None, steps: int | None = None,
             overrides: dict | None = None, reevaluate: bool = False, train_deployment: str | None = None) -> dict:
    """`train_deployment` (e.g. `train/train-gpu`) sends the training stage to that
    deployment's work pool, a GPU machine sharing `data_root`; by default it trains here."""
    logger = get_run_logger()
    config, _ = load_config(config_path)
    root = Path(data_root).resolve()
    # One pipeline per dataset at a time: a second one waits, then reuses what the first made.
    with file_lock(root / config.name / ".pipeline.lock",
                   lambda: logger.info("another pipeline of %s is running; waiting for it", config.name)):
        result = _stages(config, config_path, data_root, root, preset, steps, overrides, reevaluate,
                         train_deployment, logger)
    create_markdown_artifact(markdown=_card(result), key=f"pipeline-{config.name}",
                             description=f"Latest pipeline result of {config.name}")
    return result


def _stages(config, config_path: str, data_root: str, root: Path, preset: str | None, steps: int | None,
            overrides: dict | None, reevaluate: bool, train_deployment: str | None, logger) -> dict:
    dataset_dir = Path(prepare(config_path, data_root))
    if train_deployment:
        summary = _train_on_pool(train_deployment, config, config_path, preset, steps, overrides, dataset_dir,
                                 data_root)
    else:
        summary = train(config_path, preset, steps, overrides, dataset_dir.name, data_root)
    layout = RunLayout(Path(summary["run_dir"]))
    model_version = summary["model_version"]

    done = None if reevaluate else latest_evaluation(evaluation_history(root, config.name), model_version,
                                                     dataset_dir.name)
    if done and (Path(done["dir"]) / METRICS_FILE).exists():
        logger.info("evaluation %s of %s on %s is reused", done["eval_id"], model_version, dataset_dir.name)
        evaluation = json.loads((Path(done["dir"]) / METRICS_FILE).read_text())
    else:
        evaluation = evaluate(config_path, model_version, dataset_dir.name, data_root)

    export_file = layout.export / EXPORT_FILE
    exported = json.loads(export_file.read_text()) if export_file.exists() else None
    if exported and exported["model_version"] == model_version:
        logger.info("export of %s is reused: %s", model_version, layout.export)
    else:
        exported = export(config_path, model_version, data_root)

    return {"dataset": config.name, "dataset_dir": str(dataset_dir), "model_version": model_version,
            "run_dir": str(layout.dir), "evaluation": evaluation["eval_id"], "metrics": evaluation["metrics"],
            "report": str(Path(evaluation["dir"]) / REPORT_FILE), "export_dir": str(layout.export),
            "int8_change_pct": exported["spectral_loss"]["int8_change_pct"]}


def _train_on_pool(deployment: str, config, config_path: str, preset: str | None, steps: int | None,
                   overrides: dict | None, dataset_dir: Path, data_root: str) -> dict:
    """Run the `train` deployment as a subflow of this run and wait for it; its summary is
    read back from the run folder it wrote (the run id is a function of the inputs)."""
    from prefect.deployments import run_deployment

    run = run_deployment(deployment, timeout=None, parameters={
        "config_path": config_path, "preset": preset, "steps": steps, "overrides": overrides,
        "dataset_version": dataset_dir.name, "data_root": data_root})
    if not run.state.is_completed():
        raise RuntimeError(f"training run {run.name} of {deployment} ended {run.state.name}: {run.state.message}")
    layout = run_layout(Path(data_root).resolve(), load_metadata(dataset_dir),
                        resolve_training(config.training, preset, steps, overrides))
    summary = load_summary(layout)
    if summary is None:
        raise FileNotFoundError(f"{layout.summary}: training run {run.name} left no summary (is {data_root} shared "
                                "with the training pool's machines?)")
    return summary


def _card(result: dict) -> str:
    m = result["metrics"]
    return "\n".join([
        f"# `{result['dataset']}`: model `{result['model_version']}`",
        "",
        f"- dataset: `{result['dataset_dir']}`",
        f"- run: `{result['run_dir']}`",
        f"- evaluation `{result['evaluation']}`: {score_line(m)}",
        f"- listening report: `{result['report']}`",
        f"- exports: `{result['export_dir']}` (int8 spectral loss {result['int8_change_pct']:+.2f}%)",
    ])

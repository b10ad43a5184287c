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

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.worker_runs import WORKER_RUN_HOOKS
from flows.entry import config_dump, dataset_config
from flows.evaluate import evaluate
from flows.export import export
from flows.prepare import prepare, uploaded
from flows.train import train
from nas.config import DatasetConfig
from nas.config.presets import TrainConfig, resolve_training
from nas.constants import DEFAULT_DATA_ROOT
from nas.data.prepare import published_dataset
from nas.evaluation.history import finished_evaluation
from nas.locations import location, resolve_root
from nas.store.artifacts import Evaluation, ExportReport, Frozen, RunSummary
from nas.store.datasets import evaluation_history, load_metadata, pipeline_lock
from nas.store.runs import RunLayout, finished_export, finished_run, load_summary, run_layout
from tasks.leases import lock


@dataclass(frozen=True)
class _Run:
    """One pipeline run's inputs, parsed and resolved once at its start."""

    config_path: str
    config: DatasetConfig
    base: Path  # where the config's relative audio globs start
    data_root: str
    recipe: TrainConfig

    @property
    def root(self) -> Path:
        return resolve_root(self.data_root)

    def subflow_args(self) -> dict:
        return {"config_path": self.config_path, "data_root": self.data_root, "parsed": config_dump(self.config)}


@flow(name="pipeline", **WORKER_RUN_HOOKS)
def pipeline(config_path: str, data_root: str = DEFAULT_DATA_ROOT, training: dict | None = None, reevaluate: bool = False,
             train_deployment: str | None = None, parsed: dict | None = None) -> PipelineResult:
    """`training`: settings over the config's `training` section (`preset`, `recipe`, `steps`
    and dotted overrides such as `optim.batch_size`). `train_deployment` (e.g.
    `train/train-gpu`) sends the training stage to that deployment's work pool, a GPU
    machine sharing `data_root`; by default it trains here."""
    logger = get_run_logger()
    config, base = dataset_config(config_path, parsed)
    run = _Run(config_path, config, base, data_root, resolve_training(config.training, training))
    # One pipeline per dataset at a time: a second one waits, then reuses what the first made.
    with lock(pipeline_lock(run.root, config.name),
                   lambda: logger.info("another pipeline of %s is running; waiting for it", config.name)):
        result = None if reevaluate else _finished(run)
        if result is None:
            result = _stages(run, reevaluate, train_deployment)
        else:
            logger.info("dataset %s, model %s, evaluation %s and export are up to date; nothing to do",
                        location(result.dataset_dir).name, result.run.model_version, result.evaluation.eval_id)
    create_markdown_artifact(markdown=result.card(), key=f"pipeline-{config.name}",
                             description=f"Latest pipeline result of {config.name}")
    return result


class PipelineResult(Frozen):
    """What one pipeline run made or found: the dataset, the model, its evaluation and export."""

    dataset: str
    dataset_dir: str
    run: RunSummary
    evaluation: Evaluation
    export: ExportReport

    @property
    def layout(self) -> RunLayout:
        return RunLayout(location(self.run.run_dir))

    def card(self) -> str:
        return "\n".join([
            f"# `{self.dataset}`: model `{self.run.model_version}`",
            "",
            f"- dataset: `{self.dataset_dir}`",
            f"- run: `{self.layout.dir}`",
            f"- evaluation `{self.evaluation.eval_id}`: {self.evaluation.metrics.line()}",
            f"- listening report: `{self.evaluation.report}`",
            f"- exports: `{self.layout.export}` (int8 spectral loss {self.export.spectral_loss.int8_change_pct:+.2f}%)",
        ])


def _finished(run: _Run) -> PipelineResult | None:
    """What the stages would all find on disk, looked up with their own tests of "done", or
    None if any stage has work: then they run as subflows. A finished pipeline so records
    one flow run instead of five, and answers in about a second less (cached_rerun.py)."""
    dataset_dir = published_dataset(run.config, run.base, run.root)
    if dataset_dir is None or uploaded(run.config, dataset_dir) is None:
        return None
    layout = run_layout(run.root, load_metadata(dataset_dir), run.recipe)
    summary = finished_run(layout, run.recipe.steps)
    if summary is None:
        return None
    evaluation = finished_evaluation(evaluation_history(run.root, run.config.name), summary.model_version,
                                     dataset_dir.name)
    exported = finished_export(layout, summary.model_version)
    if evaluation is None or exported is None:
        return None
    return PipelineResult(dataset=run.config.name, dataset_dir=str(dataset_dir), run=summary, evaluation=evaluation,
                          export=exported)


def _stages(run: _Run, reevaluate: bool, train_deployment: str | None) -> PipelineResult:
    args = run.subflow_args()
    dataset_dir = location(prepare(**args))
    recipe = run.recipe.model_dump(mode="json")
    if train_deployment:
        summary = train_on_pool(train_deployment, args, run.recipe, dataset_dir)
    else:
        summary = train(dataset_version=dataset_dir.name, recipe=recipe, **args).summary
    model_version = summary.model_version
    evaluation = evaluate(model_version=model_version, dataset_version=dataset_dir.name, reuse=not reevaluate,
                          **args)
    exported = export(model_version=model_version, reuse=True, **args)
    return PipelineResult(dataset=run.config.name, dataset_dir=str(dataset_dir), run=summary, evaluation=evaluation,
                          export=exported)


def train_on_pool(deployment: str, args: dict, recipe: TrainConfig, dataset_dir: Path,
                  wandb_group: str | None = None) -> RunSummary:
    """Run the `train` deployment as a subflow of this run and wait for it; its summary is
    read back from the run folder it wrote (the run id is a function of the inputs).
    `args`: the subflows' config_path, data_root and parsed config."""
    from prefect.deployments import run_deployment

    flow_run = run_deployment(deployment, timeout=None, parameters={
        **args, "recipe": recipe.model_dump(mode="json"), "dataset_version": dataset_dir.name,
        **({"wandb_group": wandb_group} if wandb_group else {})})
    if not flow_run.state.is_completed():
        raise RuntimeError(f"training run {flow_run.name} of {deployment} ended {flow_run.state.name}: "
                           f"{flow_run.state.message}")
    layout = run_layout(resolve_root(args["data_root"]), load_metadata(dataset_dir), recipe)
    summary = load_summary(layout)
    if summary is None:
        raise FileNotFoundError(f"{layout.summary}: training run {flow_run.name} left no summary (is "
                                f"{args['data_root']} shared with the training pool's machines?)")
    return summary

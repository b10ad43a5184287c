"""The `sweep` flow: how small a model is enough for this instrument, and which runtime to
ship. The dataset is prepared once; then every point (preset x recipe x overrides x seed,
`nas.sweep`) is trained, evaluated and exported as its own subflows, side by side on the
task runner (a local Dask cluster, or an existing one); then each point's export is
benchmarked in every runtime, one point after another, so that no training shares the cores
with a measurement. Points reuse what the pipeline reuses (a run id is a function of its
settings, the seed among them), so a sweep run again trains only its new or unfinished
points; a point that fails is reported and the others go on."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.benchmark import benchmark
from flows.cli.console import in_worker
from flows.entry import config_dump, dataset_config
from flows.evaluate import evaluate
from flows.export import export
from flows.pipeline import train_on_pool
from flows.prepare import prepare
from flows.train import train
from nas import sweep as s
from nas.config import DatasetConfig
from nas.config.presets import resolve_training
from nas.constants import DEFAULT_DATA_ROOT
from nas.locations import location, resolve_root
from nas.store.artifacts import Frozen, MetricsRow
from nas.store.cache import wandb_dir
from nas.store.datasets import load_metadata
from nas.store.runs import RunLayout, run_layout, trained_to
from nas.store.sweeps import sweep_layout
from tasks.sweep import publish_sweep


class SweepResult(Frozen):
    name: str
    dir: str
    points: list[s.PointResult]
    report: str


@task(name="sweep-point")
def run_point(config_path: str, data_root: str, parsed: dict, dataset_dir: str, point: s.Point,
              train_deployment: str | None, group: str) -> s.PointResult:
    """Train, evaluate and export one point; its run folder, model version and scores."""
    in_worker()  # on a Dask worker: the command's console
    config, _ = dataset_config(config_path, parsed)
    recipe = resolve_training(config.training, point.training())
    args = {"config_path": config_path, "data_root": data_root, "parsed": parsed}
    version = location(dataset_dir).name
    if train_deployment:
        summary = train_on_pool(train_deployment, args, recipe, location(dataset_dir), wandb_group=group)
    else:
        summary = train(dataset_version=version, recipe=recipe.model_dump(mode="json"), wandb_group=group,
                        **args).summary
    evaluation = evaluate(model_version=summary.model_version, dataset_version=version, reuse=True, **args)
    export(model_version=summary.model_version, reuse=True, **args)
    return s.PointResult(point=point, run_dir=summary.run_dir, model_version=summary.model_version,
                         decoder_parameters=summary.decoder_parameters, scores=evaluation.metrics)


@flow(name="sweep-points")
def run_points(config_path: str, data_root: str, parsed: dict, dataset_dir: str, points: list[s.Point],
               train_deployment: str | None, group: str) -> list[s.PointResult]:
    """Every point at once on this flow's task runner; a point that fails is a result that
    says so."""
    logger = get_run_logger()
    futures = [run_point.submit(config_path, data_root, parsed, dataset_dir, p, train_deployment, group)
               for p in points]
    results = []
    for point, future in zip(points, futures):
        future.wait()
        if future.state.is_completed():
            results.append(future.result())
            continue
        message = " ".join(str(future.state.message).split())  # pydantic's errors span lines
        logger.warning("point %s failed: %s", point.label, message)
        results.append(s.PointResult(point=point, status=f"failed: {message}"))
    return results


@flow(name="sweep")
def sweep(config_path: str, data_root: str = DEFAULT_DATA_ROOT, presets: list[str] | None = None,
          recipes: list[str] | None = None, steps: int | None = None, seeds: int = 1,
          overrides: dict[str, list] | None = None, name: str | None = None, train_deployment: str | None = None,
          runtimes: list[str] | None = None, runtime_budget_s: float = 10.0, parsed: dict | None = None,
          dask_address: str | None = None, dask_workers: int = 2) -> SweepResult:
    """Every combination of `presets`, `recipes` and `overrides` (dotted key -> values),
    each with seeds 0 .. `seeds`-1, trained for `steps` (defaults: the config's training
    section). `train_deployment` (e.g. `train/train-gpu`) sends each point's training to
    that deployment's pool. The points run side by side on the Dask scheduler at
    `dask_address`, or on a local cluster of `dask_workers` processes, no more than the points
    left to train; with one left or none, one after another in this process. Writes
    `<root>/sweeps/<name>-<id>/`: summary.parquet, frontier.png, curves.png, report.md; and
    the card `sweep-<name>`."""
    logger = get_run_logger()
    config, _ = dataset_config(config_path, parsed)
    parsed = config_dump(config)
    name = name or config.name
    points = s.config_points(config.training, presets, recipes, steps, seeds, overrides)
    dataset_dir = prepare(config_path, data_root, parsed)
    spec = {"dataset": config.name, "dataset_version": location(dataset_dir).name,
            "points": [p.model_dump() for p in points], "runtimes": runtimes}
    root = resolve_root(data_root)
    layout = sweep_layout(root, name, spec)
    logger.info("sweep %s: %d points on %s; results in %s", name, len(points), location(dataset_dir).name, layout.dir)
    left = len(_untrained(config, location(dataset_dir), root, points))
    runner, where = _task_runner(dask_address, min(dask_workers, left))
    logger.info("%d of %d points to train: %s", left, len(points), where)
    results, curves = [], {}
    for result in run_points.with_options(task_runner=runner)(config_path, data_root, parsed, dataset_dir, points,
                                                              train_deployment, name):
        if result.done:
            seconds, curve = s.training_time(MetricsRow.read(RunLayout(location(result.run_dir)).metrics))
            curves[result.point.label] = curve
            steps_per_s = result.point.steps / seconds if seconds else None
            result = result.model_copy(update={"training_s": seconds, "steps_per_s": steps_per_s})
        results.append(result)
    for i, result in enumerate(results):  # one at a time, after all training: nothing else on the cores while timed
        if result.done:
            try:
                report = benchmark(config_path, result.model_version, data_root, parsed, runtimes, runtime_budget_s)
                results[i] = result.model_copy(update={"runtimes": report.runtimes})
            except Exception as error:
                logger.warning("point %s: the runtimes could not be measured: %s", result.point.label, error)
                results[i] = result.model_copy(update={"status": f"failed: runtimes: {error}"})
    text = publish_sweep(layout, spec, name, results, curves, config.wandb, wandb_dir(root))
    return SweepResult(name=name, dir=str(layout.dir), points=results, report=text)


def _untrained(config: DatasetConfig, dataset_dir: Path, root: Path, points: list[s.Point]) -> list[s.Point]:
    """The points whose model is not trained yet on this dataset version."""
    metadata = load_metadata(dataset_dir)
    recipes = [resolve_training(config.training, p.training()) for p in points]
    return [p for p, recipe in zip(points, recipes)
            if trained_to(run_layout(root, metadata, recipe), recipe.steps, recipe.minutes) is None]


def _task_runner(dask_address: str | None, workers: int):
    """Prefect's Dask task runner on that scheduler, or on a local cluster of `workers` (a
    point trains in each); for one point or none, a runner of one thread in this process,
    which spares the cluster's start. With where that is, to say."""
    from flows.many import dask_runner

    if dask_address:
        return dask_runner(dask_address, 0), f"on the Dask scheduler at {dask_address}"
    if workers > 1:
        return dask_runner(None, workers), f"on {workers} local Dask worker processes"
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=1), "in this process"

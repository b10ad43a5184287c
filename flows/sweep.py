"""The `sweep` flow: how small a model is enough for this instrument, and which runtime to
ship. The dataset is prepared once; then every point (preset x recipe x overrides x seed,
`nas.sweep`) is trained, evaluated and exported as its own subflows, side by side on the
task runner (a local Dask cluster, or an existing one); then each point's export is
benchmarked in every runtime, one point after another, so that no training shares the cores
with a measurement. Points reuse what the pipeline reuses (a run id is a function of its
settings, the seed among them), so a sweep run again trains only its new or unfinished
points; a point that fails is reported and the others go on."""

from __future__ import annotations

import logging
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
from nas.data.prepare import published_dataset
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


@flow(name="sweep")
def sweep(config_path: str, data_root: str = DEFAULT_DATA_ROOT, presets: list[str] | None = None,
          recipes: list[str] | None = None, steps: int | None = None, seeds: int = 1,
          overrides: dict[str, list] | None = None, name: str | None = None, train_deployment: str | None = None,
          runtimes: list[str] | None = None, runtime_budget_s: float = 10.0, parsed: dict | None = None) -> SweepResult:
    """Every combination of `presets`, `recipes` and `overrides` (dotted key -> values),
    each with seeds 0 .. `seeds`-1, trained for `steps` (defaults: the config's training
    section). `train_deployment` (e.g. `train/train-gpu`) sends each point's training to
    that deployment's pool. Writes `<root>/sweeps/<name>-<id>/`: summary.parquet,
    frontier.png, curves.png, report.md; and the card `sweep-<name>`."""
    logger = get_run_logger()
    config, _ = dataset_config(config_path, parsed)
    parsed = config_dump(config)
    name = name or config.name
    points = s.config_points(config.training, presets, recipes, steps, seeds, overrides)
    dataset_dir = prepare(config_path, data_root, parsed)
    spec = {"dataset": config.name, "dataset_version": location(dataset_dir).name,
            "points": [p.model_dump() for p in points], "runtimes": runtimes}
    layout = sweep_layout(resolve_root(data_root), name, spec)
    logger.info("sweep %s: %d points on %s; results in %s", name, len(points), location(dataset_dir).name, layout.dir)
    futures = [run_point.submit(config_path, data_root, parsed, dataset_dir, p, train_deployment, name) for p in points]
    results, curves = [], {}
    for point, future in zip(points, futures):
        future.wait()
        if not future.state.is_completed():
            message = " ".join(str(future.state.message).split())  # pydantic's errors span lines
            logger.warning("point %s failed: %s", point.label, message)
            results.append(s.PointResult(point=point, status=f"failed: {message}"))
            continue
        done = future.result()
        seconds, curve = s.training_time(MetricsRow.read(RunLayout(location(done.run_dir)).metrics))
        curves[point.label] = curve
        results.append(done.model_copy(update={"training_s": seconds,
                                               "steps_per_s": point.steps / seconds if seconds else None}))
    for i, result in enumerate(results):  # one at a time, after all training: nothing else on the cores while timed
        if result.done:
            try:
                report = benchmark(config_path, result.model_version, data_root, parsed, runtimes, runtime_budget_s)
                results[i] = result.model_copy(update={"runtimes": report.runtimes})
            except Exception as error:
                logger.warning("point %s: the runtimes could not be measured: %s", result.point.label, error)
                results[i] = result.model_copy(update={"status": f"failed: runtimes: {error}"})
    text = publish_sweep(layout, spec, name, results, curves, config.wandb, wandb_dir(resolve_root(data_root)))
    return SweepResult(name=name, dir=str(layout.dir), points=results, report=text)


def untrained(config: DatasetConfig, base: Path, data_root: str, points: list[s.Point]) -> list[s.Point]:
    """The points whose model is not trained yet: all of them if the dataset is not prepared
    (or its sources changed since)."""
    root = resolve_root(data_root)
    dataset_dir = published_dataset(config, base, root)
    if dataset_dir is None:
        return points
    metadata = load_metadata(dataset_dir)
    recipes = [resolve_training(config.training, p.training()) for p in points]
    return [p for p, recipe in zip(points, recipes)
            if trained_to(run_layout(root, metadata, recipe), recipe.steps, recipe.minutes) is None]


def sweep_options(dask_address: str | None, dask_workers: int, to_train: int):
    """The sweep on a Dask task runner: an existing cluster, or a local one of `dask_workers`
    processes (default 2: a point trains in each), no more than the `to_train` points left.
    With one left or none, no cluster: the points run one after another in this process
    (evaluating and exporting what is trained, or finding it done)."""
    from flows.many import dask_runner

    workers = min(dask_workers, to_train)
    where = (f"on the Dask scheduler at {dask_address}" if dask_address else
             f"on {workers} local Dask worker processes" if workers > 1 else "in this process")
    logging.getLogger("nas.sweep").info("%d point(s) to train, %s", to_train, where)
    if dask_address or workers > 1:
        return sweep.with_options(task_runner=dask_runner(dask_address, workers))
    from prefect.task_runners import ThreadPoolTaskRunner

    return sweep.with_options(task_runner=ThreadPoolTaskRunner(max_workers=1))

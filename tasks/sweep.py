"""Prefect task of a sweep's products: the summary table, the plots, the report, the
card `sweep-<name>` and a W&B run of the sweep's table, grouped with its points' runs."""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact

from nas import sweep as s
from nas.atomic import atomic_path, write_json
from nas.config import WandbConfig
from nas.locations import location
from nas.plots import plot_frontier, plot_learning_curves
from nas.store.sweeps import SweepLayout

from .cards import data_uri
from .wandb import open_run, resolve_mode

log = logging.getLogger(__name__)


@task(name="sweep-products")
def publish_sweep(layout: SweepLayout, spec: dict, name: str, results: list[s.PointResult],
                  curves: dict[str, list[tuple[int, float, float]]], wandb_config: WandbConfig, wandb_dir: Path) -> str:
    """Writes what was swept, the plots, the report and the runtimes' table, then
    `summary.parquet` last (the sweep's commit object); returns the report's Markdown."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dataset = spec["dataset"]
    write_json(layout.spec, spec)
    done = [r for r in results if r.done]
    points = s.frontier_points(done)
    plot_frontier(points, s.pareto(points), layout.frontier, title=f"{dataset}: quality against speed")
    plot_learning_curves(curves, layout.curves, title=dataset)
    text = s.report(name, dataset, results, layout.frontier.name, layout.curves.name)
    with atomic_path(layout.report) as tmp:
        tmp.write_text(text)
    summary = _table([r.summary_row() for r in results])
    runtimes = _table([row for r in results for row in r.runtime_rows()])
    with atomic_path(layout.runtimes) as tmp:
        pq.write_table(pa.Table.from_pylist(runtimes), tmp)
    with atomic_path(layout.summary) as tmp:
        pq.write_table(pa.Table.from_pylist(summary), tmp)
    card = s.report(name, dataset, results, data_uri(layout.frontier), data_uri(layout.curves))
    create_markdown_artifact(markdown=card + f"\nFolder: `{layout.dir}`\n", key=f"sweep-{name}",
                             description=f"Sweep {name} of {dataset}")
    _log_wandb(layout, name, dataset, summary, runtimes, wandb_config, wandb_dir)
    return text


def _table(rows: list[dict]) -> list[dict]:
    """Rows with every column any of them has (a failed point has no scores; overrides differ)."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return [{c: r.get(c) for c in columns} for r in rows]


def _log_wandb(layout: SweepLayout, name: str, dataset: str, summary: list[dict], runtimes: list[dict],
               config: WandbConfig, wandb_dir: Path) -> None:
    """The summary and the runtimes as W&B tables in a run of job type `sweep`, in the group of
    the points' runs."""
    mode = resolve_mode(config)
    if mode == "disabled" or not summary:
        return
    try:
        import wandb

        run = open_run(config, mode, wandb_dir, "sweep", f"sweep-{name}", {"dataset": dataset, "folder": str(layout.dir)},
                       group=name)
        tables = {f"sweep/{key}": wandb.Table(columns=list(rows[0]), data=[[_cell(v) for v in r.values()]
                                                                            for r in rows])
                  for key, rows in (("summary", summary), ("runtimes", runtimes)) if rows}
        run.log({**tables, "sweep/frontier": wandb.Image(str(_local(layout.frontier)))})
        run.finish()
    except Exception as error:  # wandb raises many types; the sweep's files are written either way
        log.warning("W&B logging of sweep %s failed (%s: %s); its summary is in %s", name, type(error).__name__,
                    error, location(layout.dir))


def _cell(value):
    return value if value is None or isinstance(value, (int, float, str, bool)) else str(value)


def _local(png: Path) -> Path:
    """W&B reads local files; a bucket's PNG is fetched."""
    from nas.store.cache import local_folder

    return local_folder(png.parent) / png.name

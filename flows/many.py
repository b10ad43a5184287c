"""The `datasets` flow: many dataset configs at once, each as its own task, on a Dask
cluster when asked (prefect-dask's DaskTaskRunner: a local cluster of N worker
processes, or an existing scheduler's address); one dataset's failure does not stop the
others. Each task runs the dataset's `pipeline` (or only its `prepare`) flow, so the UI
shows every dataset's run nested under its task, as `nas run` would."""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from flows.cli.console import in_worker
from flows.pipeline import pipeline
from flows.prepare import prepare
from nas.constants import DEFAULT_DATA_ROOT

Until = Literal["prepare", "export"]


@task(name="dataset")
def run_dataset(config_path: str, data_root: str, until: Until, training: dict | None) -> str:
    """The dataset folder made (and, until export, the model trained, evaluated and exported)."""
    in_worker()  # on a Dask worker: the command's console
    if until == "prepare":
        return prepare(config_path, data_root)
    return pipeline(config_path, data_root, training).dataset_dir


@flow(name="datasets")
def datasets(config_paths: list[str], data_root: str = DEFAULT_DATA_ROOT, until: Until = "export",
             training: dict | None = None) -> dict[str, dict]:
    """Every config's pipeline (`until="export"`, with `training` over each config's training
    section) or preparation (`until="prepare"`) at once, as far as the task runner allows."""
    logger = get_run_logger()
    futures = {path: run_dataset.submit(path, data_root, until, training) for path in config_paths}
    results, rows = {}, []
    for path, future in futures.items():
        future.wait()
        state = future.state
        if state.is_completed():
            results[path] = {"dataset_dir": future.result()}
            rows.append({"config": path, "status": "done", "dataset_dir": future.result()})
        else:
            logger.warning("%s failed: %s", path, state.message)
            results[path] = {"error": str(state.message)}
            rows.append({"config": path, "status": f"failed: {state.message}", "dataset_dir": ""})
    create_table_artifact(table=rows, key="datasets", description=f"Datasets run together (until {until})")
    return results


def dask_runner(address: str | None, workers: int):
    """A DaskTaskRunner on the scheduler at `address`, or on a local cluster of `workers`
    single-threaded processes (each dataset's TensorFlow and Beam work is heavy)."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                         "dashboard_address": ":0"})

"""Dask, on a dask.distributed cluster of two worker processes: preparation on Apache
Beam's Dask runner (the same records as on the DirectRunner, byte for byte), and many
datasets at once on Prefect's Dask task runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_config


def test_dask_runner_writes_the_records_the_direct_runner_wrote(prepared, small_sources, tmp_path):
    from distributed import Client, LocalCluster

    from nas.config import load_config
    from nas.data.prepare import prepare_dataset

    direct_dir = prepared[0]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        path = write_config(small_sources / "dask.yaml", beam={
            "runner": "DaskRunner", "options": {"dask_client_address": cluster.scheduler_address}})
        config, base = load_config(path)
        dask_dir = prepare_dataset(config, base, tmp_path / "data")
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)

    assert len(executed) == 2 and all(n > 0 for n in executed.values()), executed  # both workers did work
    assert dask_dir.name == direct_dir.name  # the runner is not part of the dataset version
    names = sorted(p.name for p in direct_dir.glob("*.tfrecord-*"))
    assert names and names == sorted(p.name for p in dask_dir.glob("*.tfrecord-*"))
    for name in [*names, "features.parquet", "statistics.json"]:
        assert (dask_dir / name).read_bytes() == (direct_dir / name).read_bytes(), name


@pytest.mark.slow
def test_datasets_flow_prepares_two_datasets_at_once_on_a_dask_task_runner(prefect_server, prepared, small_sources,
                                                                            tmp_path):
    from distributed import Client, LocalCluster

    from flows.many import dask_runner, datasets

    configs = [str(write_config(small_sources / f"{name}.yaml", name=name)) for name in ("dask-a", "dask-b")]
    root = tmp_path / "data"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        flow = datasets.with_options(task_runner=dask_runner(cluster.scheduler_address, 0))
        state = flow(configs, str(root), "prepare", return_state=True)
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)

    assert state.is_completed(), state.message
    results = state.result()
    assert sorted(executed.values()) == [1, 1], executed  # one dataset on each worker process
    for config, name in zip(configs, ("dask-a", "dask-b")):
        dataset_dir = results[config]["dataset_dir"]
        assert dataset_dir.startswith(str(root / name))
        for shard in prepared[0].glob("*.tfrecord-*"):
            assert (Path(dataset_dir) / shard.name).read_bytes() == shard.read_bytes()

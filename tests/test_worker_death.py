"""A worker that dies while a pipeline runs on it: the server marks the run crashed once its
heartbeats stop (flows/worker_runs.py), and a retry on a new worker completes it without
redoing a finished stage."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.cli.local_server import local_server, stop
from tests.conftest import REPO, migrated_home
from tests.test_deployments import _worker

sys.path.insert(0, str(REPO / "benchmarks"))
from load import checkout, process_tree  # noqa: E402

BIN = REPO / ".venv" / "bin"
HEARTBEAT_S = 30  # Prefect's shortest: the run is marked crashed 60 to 90 s after its death


def _read_run(run_id):
    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return await client.read_flow_run(run_id)

    return asyncio.run(read())


def _wait(run_id, done, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = _read_run(run_id)
        if done(run):
            return run
        time.sleep(2)
    raise TimeoutError(f"{what} within {seconds} s; the run is {run.state.name}: {run.state.message}")


def _retry(run_id) -> None:
    """What the UI's Retry does to a crashed run: scheduled again, for a worker to pick up."""
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    async def retry():
        async with get_client() as client:
            await client.set_flow_run_state(run_id, Scheduled(name="AwaitingRetry"), force=True)

    asyncio.run(retry())


@pytest.mark.slow
def test_a_pipeline_whose_worker_dies_is_crashed_and_a_retry_completes_it(prepared, small_sources, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.worker_runs import CRASH_WATCH

    # A data root of its own: a model trained to 80 steps in the shared one would be the model
    # that test_flow's 20-step request finds already there (runs are keyed by content, not steps).
    config = prepared[1]
    root = tmp_path / "data"
    dataset_dir = Path(shutil.copytree(prepared[0], root / config.name / prepared[0].name))
    prepared_at = (dataset_dir / "dataset.json").stat().st_mtime
    project = checkout(tmp_path / "project")
    training = {"preset": "cnn-tiny", "steps": 80, "checkpoint_every": 20, "optim.batch_size": 4}
    with local_server(migrated_home(tmp_path / "prefect-home")) as server, \
            temporary_settings({PREFECT_API_URL: server.env["PREFECT_API_URL"]}):
        env = {**server.env, "NAS_REPO": str(project), "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S)}
        for args in (["work-pool", "create", "nas-process", "--type", "process"],
                     ["--no-prompt", "deploy", "--name", "pipeline-on-register"]):
            subprocess.run([str(BIN / "prefect"), *args], env=env, cwd=project, check=True, capture_output=True)
        worker = _worker("nas-process", env, project, tmp_path / "worker-1.log")
        try:
            started = subprocess.run(
                [str(BIN / "prefect"), "deployment", "run", "pipeline/pipeline-on-register",
                 "--param", f"config_path={small_sources / 'test.yaml'}", "--param", f"data_root={root}",
                 "--param", f"training={json.dumps(training)}"],
                env=env, cwd=project, check=True, capture_output=True, text=True).stdout
            run_id = next(word for line in started.splitlines() if "UUID" in line for word in line.split()
                          if word.count("-") == 4)
            deadline = time.monotonic() + 300
            while not list((root / config.name / "runs").rglob("ckpt-20.index")):  # training is under way
                assert time.monotonic() < deadline and worker.poll() is None, (tmp_path / "worker-1.log").read_text()
                time.sleep(0.5)
            for pid in process_tree({worker.pid}):  # the machine dies: the worker and the run's process
                os.kill(pid, signal.SIGKILL)
            worker.wait()
        finally:
            stop(worker)
        assert _read_run(run_id).state.is_running()  # nothing else can tell the server

        crashed = _wait(run_id, lambda run: run.state.is_crashed(), 4 * HEARTBEAT_S, "not marked crashed")
        assert f"no heartbeat for {2 * HEARTBEAT_S} s" in crashed.state.message
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            assert len(client.read_automations_by_name(CRASH_WATCH)) == 1

        _retry(run_id)
        worker = _worker("nas-process", env, project, tmp_path / "worker-2.log")
        try:
            done = _wait(run_id, lambda run: run.state.is_final(), 600, "no final state after the retry")
        finally:
            stop(worker)
    log = (tmp_path / "worker-2.log").read_text()
    assert done.state.is_completed(), log[-5000:]
    assert "from its checkpoint at step 20" in log, log[-5000:]
    assert (dataset_dir / "dataset.json").stat().st_mtime == prepared_at  # prepared once, reused
    (run_dir,) = [p.parent.parent for p in (root / config.name / "runs").glob("*/model/model.json")
                  if (p.parent.parent / "checkpoints" / "ckpt-80.index").exists()]
    assert (run_dir / "export" / "export.json").is_file()

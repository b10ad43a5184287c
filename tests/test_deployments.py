"""The product as people use it: a real `prefect server start`, deployments applied from
prefect.yaml, a process worker, `nas register` whose event triggers the pipeline, the
lineage read back through the client, and the flow run page in headless Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

BIN = REPO / ".venv" / "bin"
CHROMIUM = shutil.which("chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`prefect server start` on a free loopback port with a database of its own."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "2",
           "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}
    log = (home / "server.log").open("w")
    process = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/health", 180)
        yield {"url": f"http://127.0.0.1:{port}", "env": env, "home": home}
    finally:
        _stop(process)
        log.close()


def _run(args: list[str], env: dict, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


async def _flow_runs(deployment_name: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment_name])))


async def _artifacts(flow_run_ids):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=list(flow_run_ids))))


async def _subflow_runs(parent_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])))


def _wait_for_run(deployment_name: str, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        runs = asyncio.run(_flow_runs(deployment_name))
        if runs and runs[0].state.is_final():
            return runs[0]
        time.sleep(3)
    raise TimeoutError(f"no finished run of {deployment_name} within {seconds} s")


def test_register_triggers_the_pipeline_through_a_worker(server, small_sources, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    project = tmp_path / "project"  # a checkout of the repo: its code, its own prefect.yaml and configs
    (project / "dataset_configs").mkdir(parents=True)
    for code in ("flows", "tasks", "nas"):
        (project / code).symlink_to(REPO / code)
    shutil.copy(REPO / "prefect.yaml", project / "prefect.yaml")
    env = {**server["env"], "NAS_REPO": str(project)}
    _run([str(BIN / "prefect"), "work-pool", "create", "nas-process", "--type", "process"], env)
    _run([str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "pipeline-on-register"], env, cwd=project)
    worker_log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "nas-process"], env=env, cwd=project,
                              stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        data_root = tmp_path / "data"
        small = ["--set", "crepe.capacity=tiny", "--set", "hop_secs=2.0", "--set", "chunk_secs=8.0",
                 "--set", "eval_fraction=0.25", "--set", "wandb.mode=offline", "--set", "wandb.project=nas-tests",
                 "--set", "training.steps=20", "--set", "training.overrides.optim.batch_size=4"]
        done = _run([str(BIN / "nas"), "register", str(small_sources / "audio"), "--name", "cello", *small,
                     "--configs-dir", str(project / "dataset_configs"), "--prefect-yaml", str(project / "prefect.yaml"),
                     "--data-root", str(data_root)], env, cwd=project)
        assert "emitted nas.dataset.registered for nas.dataset.cello" in done.stdout
        config = yaml.safe_load((project / "dataset_configs" / "cello.yaml").read_text())
        assert config["crepe"]["capacity"] == "tiny" and config["training"]["overrides"] == {"optim.batch_size": 4}
        deployments = {d["name"]: d for d in yaml.safe_load((project / "prefect.yaml").read_text())["deployments"]}
        assert deployments["pipeline-cello"]["parameters"] == {
            "config_path": "dataset_configs/cello.yaml", "data_root": str(data_root), "preset": "cnn-tiny",
            "steps": 20}

        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
            run = _wait_for_run("pipeline-on-register", 900)
    finally:
        _stop(worker)
        worker_log.close()
    assert run.state.is_completed(), (tmp_path / "worker.log").read_text()[-5000:]
    assert run.parameters["config_path"] == "dataset_configs/cello.yaml"

    with temporary_settings({PREFECT_API_URL: server["env"]["PREFECT_API_URL"]}):
        stages = {r.name: r for r in asyncio.run(_subflow_runs(run.id))}
        artifacts = {a.key: a for a in asyncio.run(_artifacts([run.id, *(r.id for r in stages.values())]))}
    assert {"dataset-cello", "model-cello", "evaluation-cello", "export-cello", "pipeline-cello"} <= artifacts.keys()
    dataset_dir = next((data_root / "cello").glob("*/dataset.json")).parent
    assert dataset_dir.name in artifacts["dataset-cello"].data and "a-mono-32k.flac" in artifacts["dataset-cello"].data
    assert "cnn-tiny" in artifacts["model-cello"].data and dataset_dir.name in artifacts["model-cello"].data
    assert "report.html" in artifacts["pipeline-cello"].data

    if CHROMIUM:  # `make test` installs it; the page is the run as the UI renders it
        _check_flow_run_page(server["url"], run, tmp_path)


def _check_flow_run_page(url: str, run, tmp_path: Path) -> None:
    page = f"{url}/runs/flow-run/{run.id}"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--virtual-time-budget=20000", "--window-size=1400,1000"]
    dom = subprocess.run([*common, "--dump-dom", page], capture_output=True, text=True, timeout=180).stdout
    assert run.name in dom and "Completed" in dom, dom[-3000:]
    shot = tmp_path / "flow-run.png"
    subprocess.run([*common, f"--screenshot={shot}", page], capture_output=True, timeout=180)
    assert shot.stat().st_size > 20_000

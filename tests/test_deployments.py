"""The product as people use it: a real `prefect server start`, deployments applied from
prefect.yaml, a process worker, `nas register` whose event triggers the pipeline, the
lineage read back through the client, and the flow run page in headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from flows.cli.local_server import stop
from tests.conftest import REPO, artifacts_of, flow_runs

sys.path.insert(0, str(REPO / "benchmarks"))
from load import checkout  # noqa: E402

BIN = REPO / ".venv" / "bin"
CHROMIUM = shutil.which("chromium")


def _run(args: list[str], env: dict, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _wait_for_run(deployment_name: str, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        runs = flow_runs(deployment=deployment_name)
        if runs and runs[0].state.is_final():
            return runs[0]
        time.sleep(3)
    raise TimeoutError(f"no finished run of {deployment_name} within {seconds} s")


def _worker(pool: str, env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    # polling every 2 s instead of 10: the test waits for three runs to be picked up
    return subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", pool],
                            env={**env, "PREFECT_WORKER_QUERY_SECONDS": "2"}, cwd=cwd,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
def test_register_triggers_the_pipeline_through_a_worker(deployments_server, s3_endpoint, bucket, small_sources,
                                                         tmp_path):
    """On machines that share only a bucket and the Prefect server: the audio and the data root
    are in the bucket, and each worker has its own empty cache."""
    import os

    import s3fs
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from nas.locations import location

    server = deployments_server
    project = checkout(tmp_path / "project")  # the repo's code, its own prefect.yaml and configs
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}  # the endpoint, as each machine has it
    env = {**server.env, **aws, "NAS_REPO": str(project)}
    prefect = str(BIN / "prefect")
    for pool in ("nas-process", "nas-gpu"):
        _run([prefect, "work-pool", "create", pool, "--type", "process"], env)
    _run([prefect, "--no-prompt", "deploy", "--name", "pipeline-on-register", "--name", "train-gpu"], env, cwd=project)
    caches = {pool: tmp_path / f"{pool}-cache" for pool in ("nas-process", "nas-gpu")}
    workers = [_worker(pool, {**env, "NAS_CACHE_DIR": str(caches[pool])}, project, tmp_path / f"{pool}.log")
               for pool in ("nas-process", "nas-gpu")]
    s3fs.S3FileSystem(skip_instance_cache=True).put(f"{small_sources / 'audio'}/", f"{bucket}/cello/", recursive=True)
    data_root = location(f"s3://{bucket}/nas")
    try:
        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
            small = ["--set", "crepe.capacity=tiny", "--set", "hop_secs=2.0", "--set", "chunk_secs=8.0",
                     "--set", "eval_fraction=0.25", "--set", "beam.direct_running_mode=in_memory",
                     "--set", "wandb.mode=offline", "--set", "wandb.project=nas-tests",
                     "--set", "training.steps=20", "--set", "training.overrides.optim.batch_size=4"]
            done = _run([str(BIN / "nas"), "register", f"s3://{bucket}/cello", "--name", "cello", *small,
                         "--data-root", str(data_root)], env, cwd=project)
            assert "emitted nas.dataset.registered for nas.dataset.cello" in done.stdout
            config = yaml.safe_load((project / "dataset_configs" / "cello.yaml").read_text())
            assert config["crepe"]["capacity"] == "tiny" and config["training"]["overrides"] == {"optim.batch_size": 4}
            deployments = {d["name"]: d for d in yaml.safe_load((project / "prefect.yaml").read_text())["deployments"]}
            assert deployments["pipeline-cello"]["parameters"] == {
                "config_path": "dataset_configs/cello.yaml", "data_root": str(data_root),
                "training": {"preset": "cnn-tiny", "steps": 20}}

            run = _wait_for_run("pipeline-on-register", 900)
            assert run.state.is_completed(), (tmp_path / "nas-process.log").read_text()[-5000:]
            assert run.parameters["config_path"] == "dataset_configs/cello.yaml"
            stages = {r.name: r for r in flow_runs(parent=run.id)}
            artifacts = artifacts_of(run.id, *(r.id for r in stages.values()))

            # The dataset's own deployment, applied from the prefect.yaml that register extended,
            # with training sent to the GPU pool's worker: the prepared data is reused and the
            # model trained on to 25 steps there (a finished pipeline would start no training).
            dataset_dir = next((data_root / "cello").glob("*/dataset.json")).parent
            prepared_at = (dataset_dir / "dataset.json").stat().st_mtime
            _run([prefect, "--no-prompt", "deploy", "--name", "pipeline-cello"], env, cwd=project)
            _run([prefect, "deployment", "run", "pipeline/pipeline-cello", "--param",
                  "train_deployment=train/train-gpu", "--param", 'training={"preset": "cnn-tiny", "steps": 25}'],
                 env, cwd=project)
            again = _wait_for_run("pipeline-cello", 600)
            assert again.state.is_completed(), (tmp_path / "nas-process.log").read_text()[-5000:]
            trained = _wait_for_run("train-gpu", 60)
    finally:
        for worker in workers:
            stop(worker)
    assert trained.state.is_completed() and trained.work_pool_name == "nas-gpu"
    assert trained.parameters["dataset_version"] == dataset_dir.name
    assert trained.parameters["recipe"]["steps"] == 25 and trained.parameters["recipe"]["optim"]["batch_size"] == 4
    assert (dataset_dir / "dataset.json").stat().st_mtime == prepared_at
    # the GPU machine staged the records into its own cache, and kept its checkpoints there
    assert (caches["nas-gpu"] / "datasets" / "cello" / dataset_dir.name / "dataset.json").is_file()
    assert list((caches["nas-gpu"] / "checkpoints").rglob("ckpt-25.index"))
    assert not list(project.rglob("*.tfrecord-*")) and not (project / "nas-data").exists()

    assert {"dataset-cello", "model-cello", "evaluation-cello", "export-cello", "pipeline-cello"} <= artifacts.keys()
    assert dataset_dir.name in artifacts["dataset-cello"].data and "a-mono-32k.flac" in artifacts["dataset-cello"].data
    assert "cnn-tiny" in artifacts["model-cello"].data and dataset_dir.name in artifacts["model-cello"].data
    assert "report.html" in artifacts["pipeline-cello"].data
    assert f"`{dataset_dir}`" in artifacts["pipeline-cello"].data  # the cards name the bucket's objects

    if not CHROMIUM:  # everything above is checked; only the look of the page is not
        pytest.skip("no chromium on PATH and none could be installed (`make test` installs Debian's where it can): "
                    "the flow run page was not looked at")
    _check_flow_run_page(server.url, run, tmp_path)


def _check_flow_run_page(url: str, run, tmp_path: Path) -> None:
    page = f"{url}/runs/flow-run/{run.id}"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--virtual-time-budget=20000", "--window-size=1400,1000"]
    dom = subprocess.run([*common, "--dump-dom", page], capture_output=True, text=True, timeout=180).stdout
    # The run's name, state, deployment, pool and triggering automation, as the UI renders
    # them (the subflow timeline itself is drawn on a canvas, so it is seen in the shot).
    for text in (run.name, "Completed", "pipeline-on-register", "nas-process", "Subflow Runs"):
        assert text in dom, (text, dom[-3000:])
    shot = tmp_path / "flow-run.png"
    subprocess.run([*common, f"--screenshot={shot}", page], capture_output=True, timeout=180)
    assert shot.stat().st_size > 20_000


def test_a_flow_run_a_worker_started_ends_its_process_after_its_final_state(monkeypatch):
    """Prefect's queue services can hold a worker's flow-run process at exit forever (one did,
    two hours, in this suite): once the run's final state is in, its own process is ended
    EXIT_GRACE_S later with the run's outcome. A subflow's end, or a run whose process is
    not this one, starts nothing. Every flow a deployment runs carries the hook."""
    import threading
    import uuid
    from types import SimpleNamespace

    from flows import worker_runs

    ended, called = [], threading.Event()
    monkeypatch.setattr(worker_runs, "EXIT_GRACE_S", 0.05)
    monkeypatch.setattr(worker_runs, "_exit", lambda code: (ended.append(code), called.set()))
    run = SimpleNamespace(id=uuid.uuid4(), parent_task_run_id=None)
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", str(run.id))
    for outcome, code in ((False, 1), (True, 0)):
        called.clear()
        worker_runs.end_worker_process(None, run, SimpleNamespace(is_completed=lambda: outcome))
        assert called.wait(10) and ended[-1] == code
    for other in (SimpleNamespace(id=run.id, parent_task_run_id=uuid.uuid4()),
                  SimpleNamespace(id=uuid.uuid4(), parent_task_run_id=None)):
        worker_runs.end_worker_process(None, other, SimpleNamespace(is_completed=lambda: True))
    time.sleep(0.5)
    assert ended == [1, 0]

    import importlib

    for entry in {d["entrypoint"] for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}:
        path, name = entry.split(":")
        deployed = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
        for hooks in ("on_completion_hooks", "on_failure_hooks", "on_crashed_hooks", "on_cancellation_hooks"):
            assert worker_runs.end_worker_process in getattr(deployed, hooks), (entry, hooks)

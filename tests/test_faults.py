"""Faults real machines have: a killed preparation, a killed pipeline, two runs of one
dataset at once, an unreachable W&B server, a disk that fills."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from tests.conftest import FAKE_KEY, MULTI_PROCESSING, REPO, artifacts_of, flow_runs, migrated_home, write_config
from tests.test_console import NOISE

PREPARE = """
import logging, sys
from pathlib import Path
from nas.config import load_config
from nas.data.prepare import prepare_dataset, run_here
logging.basicConfig(level=logging.INFO)
def run(stage, *args):
    done = run_here(stage, *args)
    if stage.name == "features-and-records":  # CREPE ran here (Beam in memory) or in Beam's workers
        print("features loaded:", sorted(m for m in ("tensorflow", "ddsp") if m in sys.modules))
    return done
config, base = load_config(sys.argv[1])
print(prepare_dataset(config, base, Path(sys.argv[2]), run=run))
"""


def _records(dataset_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(dataset_dir.glob("*.tfrecord-*"))}


def _start(args: list[str], **kw) -> subprocess.Popen:
    """A child in its own session, so that it and its Beam workers can be killed together."""
    return subprocess.Popen(args, cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def _kill_when(process: subprocess.Popen, ready, what: str, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert process.poll() is None, f"finished before {what}: {process.stderr.read()[-2000:]}"
        assert time.time() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_killed_preparation_resumes_to_the_records_of_an_uninterrupted_run(prepared, small_sources, tmp_path):
    from nas.config import load_config
    from nas.data.prepare import prepare_dataset

    uninterrupted = prepared[0]
    # the `prepared` config (the same version), prepared as a user's config is: in a Beam worker process
    config = write_config(small_sources / "killed.yaml", beam=MULTI_PROCESSING)
    root = tmp_path / "data"
    staging = root / "test-violin" / f"{uninterrupted.name}.partial"
    first = _start([sys.executable, "-c", PREPARE, str(config), str(root)])
    _kill_when(first, lambda: any(staging.glob(".spill/*.frames.json")), "the first chunk's features")

    assert not (root / "test-violin" / uninterrupted.name).exists()  # nothing published
    for shard in staging.glob("*.tfrecord-*"):  # whatever is under a final name is whole
        assert sum(1 for _ in tf.data.TFRecordDataset(str(shard))) > 0
    for frames in staging.glob(".spill/*.frames.json"):
        json.loads(frames.read_text())

    dataset_dir = prepare_dataset(*load_config(config), root)
    assert dataset_dir.name == uninterrupted.name and not staging.exists()
    assert _records(dataset_dir) == _records(uninterrupted)
    for name in ("features.parquet", "statistics.json"):
        assert (dataset_dir / name).read_bytes() == (uninterrupted / name).read_bytes(), name
    assert not list(dataset_dir.glob(".*"))  # no temporary or spill files left


def test_one_dataset_prepared_twice_at_once_is_built_once_beside_another(prepared, small_sources, tmp_path):
    uninterrupted = prepared[0]
    same = write_config(small_sources / "twice.yaml")
    other = write_config(small_sources / "other.yaml", name="other-violin")
    root = tmp_path / "data"
    runs = [_start([sys.executable, "-c", PREPARE, str(path), str(root)]) for path in (same, same, other)]
    outputs = [run.communicate(timeout=900) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], [err[-2000:] for _, err in outputs]

    first, second, beside = (Path(out.strip().splitlines()[-1]) for out, _ in outputs)
    # two built features (one waited), in their own process, loading no TensorFlow (nor ddsp)
    assert [line for out, _ in outputs for line in out.splitlines() if line.startswith("features loaded:")] == \
        ["features loaded: []"] * 2
    assert first == second == root / "test-violin" / uninterrupted.name
    assert sum("another run is preparing" in err for _, err in outputs[:2]) == 1  # one waited for the other
    assert sum("is up to date" in err for _, err in outputs[:2]) == 1  # and then found it done
    assert beside.parent.name == "other-violin"
    for dataset_dir in (first, beside):
        assert _records(dataset_dir) == _records(uninterrupted)
        assert json.loads((dataset_dir / "dataset.json").read_text())["counts"] == \
            json.loads((uninterrupted / "dataset.json").read_text())["counts"]
    assert not list(root.glob("*/*.partial"))


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free now, and nothing listens on it


def test_unreachable_wandb_is_retried_then_the_dataset_is_kept_with_a_warning(prefect_server, prepared, small_sources,
                                                                             tmp_path, monkeypatch):
    from flows.prepare import prepare

    dataset_dir = prepared[0]
    root = tmp_path / "data"
    shutil.copytree(dataset_dir, root / "test-violin" / dataset_dir.name)
    config = write_config(small_sources / "online.yaml", wandb={
        "project": "nas-tests", "mode": "online", "attempts": 2, "backoff_s": 1.0, "timeout_s": 5.0})
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    records = Records()
    loggers = [logging.getLogger(name) for name in ("tasks.wandb_upload", "prefect.flow_runs")]
    for logger in loggers:
        logger.addHandler(records)
    try:
        state = prepare(str(config), str(root), return_state=True)
    finally:
        for logger in loggers:
            logger.removeHandler(records)
    assert state.is_completed(), state.message
    assert Path(state.result()) == root / "test-violin" / dataset_dir.name
    assert _records(Path(state.result())) == _records(dataset_dir)  # nothing lost
    logged = "\n".join(records.lines)
    assert "try 1 of 2" in logged and "retrying in 1 s" in logged
    assert "W&B upload failed; the dataset is kept locally" in logged
    assert not (root / "test-violin" / f"{dataset_dir.name}.wandb.json").exists()  # tried again next time
    card = artifacts_of(state.state_details.flow_run_id)["dataset-test-violin"].data
    assert "Upload failed, dataset kept locally" in card and "after 2 attempts" in card

    assert FAKE_KEY not in logged and FAKE_KEY not in card
    for path in root.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_pipeline_killed_while_training_resumes_once_though_started_twice(prefect_server, prepared, small_sources,
                                                                    tmp_path):
    from prefect.settings import PREFECT_API_URL

    dataset_dir = prepared[0]
    root = tmp_path / "data"
    shutil.copytree(dataset_dir, root / "test-violin" / dataset_dir.name)
    config = write_config(small_sources / "pipeline-kill.yaml")
    run = [sys.executable, "-m", "flows.cli", "run", str(config), "--data-root", str(root), "--steps", "40",
           "--set", "checkpoint_every=10", "--set", "log_every=10", "--set", "optim.batch_size=4"]
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    first = _start(run, env=env)
    # Killed once TensorFlow has recorded a checkpoint as complete: what a resume starts from (a
    # kill can land between writing ckpt-N's files and recording it, on a loaded machine).
    _kill_when(first, lambda: any(root.glob("test-violin/runs/*/checkpoints/checkpoint")), "checkpoint 10")
    run_dir = next(root.glob("test-violin/runs/*/checkpoints")).parent
    assert not (run_dir / "model").exists()
    state = (run_dir / "checkpoints" / "checkpoint").read_text()
    killed_at = int(re.search(r'^model_checkpoint_path: "ckpt-(\d+)"$', state, re.MULTILINE).group(1))

    # resumed twice at once: one pipeline trains, evaluates and exports; the other waits, then reuses it all
    again = [_start(run, env=env) for _ in range(2)]
    outputs = [process.communicate(timeout=900) for process in again]
    assert [process.returncode for process in again] == [0, 0], [err[-3000:] for _, err in outputs]
    resumed = [err for _, err in outputs if f"resumed {run_dir.name} from its checkpoint at step {killed_at}" in err]
    waited = [err for _, err in outputs if "another pipeline of test-violin is running; waiting for it" in err]
    assert len(resumed) == 1 and len(waited) == 1 and resumed != waited, [err[-3000:] for _, err in outputs]
    assert f"model {run_dir.name}-40, evaluation" in waited[0] and "nothing to do" in waited[0]  # found it all
    assert "is up to date" in resumed[0]  # preparation was not redone
    for out, err in outputs:
        assert f"model {run_dir.name}-40" in out and "exports:" in out
        assert [n for n in NOISE if n in out + err] == []  # our lines only, killed and resumed or not
    steps = [r["step"] for r in pq.read_table(run_dir / "metrics.parquet").to_pylist() if r["loss"] == r["loss"]]
    assert steps == [10, 20, 30, 40]  # each logged once across the kill
    assert len(list((run_dir / "evaluations").iterdir())) == 1  # evaluated once


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of its own for the data root and the temporary folders (TMPDIR, so Beam's too,
    and W&B's), so that the disk that fills is the one under test; unmounted at the end.
    Mounting one takes root: elsewhere the test is skipped, saying so."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): the full-disk faults were not tried")
    (disk / "tmp").mkdir()
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def _fill(disk: Path, leave: int) -> None:
    """The disk full but for `leave` bytes."""
    with open(disk / "filler", "wb") as filler:
        os.posix_fallocate(filler.fileno(), 0, shutil.disk_usage(disk).free - leave)


@pytest.mark.slow
def test_a_disk_that_fills_stops_prepare_and_training_with_one_line_and_nothing_half_published(
        small_disk, small_sources):
    """Prepare and then training, each on a disk that fills as it writes: exit code 1, one line
    naming the data root, no traceback, no dataset version or model a later command would take
    as finished; with the space back, the same command completes."""
    root = small_disk / "data"
    env = {**os.environ, "TMPDIR": str(small_disk / "tmp"), "WANDB_DIR": str(small_disk / "tmp")}
    config = write_config(small_sources / "full-disk.yaml", name="full-disk", audio=["audio/c-vorbis.ogg"],
                          eval_fraction=0.5, beam=MULTI_PROCESSING)
    said = f"nas: {root}: no space left on the device; nothing half-written is published: free some space and " \
           "run the command again to go on"

    def nas(*args):
        return subprocess.run([sys.executable, "-m", "flows.cli", *args, "--data-root", str(root)], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=600)

    _fill(small_disk, 2**20)  # the records alone are about 2 MB
    full = nas("prepare", str(config))
    # the whole stderr on failure: a hung exit's stacks (flows/cli/main.py) start far above its end
    assert full.returncode == 1 and full.stderr.strip().splitlines()[-1] == said, full.stderr
    assert "Traceback" not in full.stderr and not list(root.rglob("dataset.json"))
    (small_disk / "filler").unlink()
    done = nas("prepare", str(config))
    assert done.returncode == 0, done.stderr[-3000:]
    version = Path(done.stdout.strip().splitlines()[-1]).name

    train = ["train", str(config), "--dataset-version", version, "--steps", "10", "--set", "optim.batch_size=2",
             "--set", "checkpoint_every=5", "--set", "log_every=5"]
    _fill(small_disk, 200 * 2**10)  # a checkpoint, the samples and W&B's run do not fit
    full = nas(*train)
    assert full.returncode == 1 and full.stderr.strip().splitlines()[-1] == said, full.stderr
    assert "Traceback" not in full.stderr and not list(root.rglob("model.json"))
    (small_disk / "filler").unlink()
    done = nas(*train)
    assert done.returncode == 0, done.stderr[-3000:]
    (model,) = root.rglob("model/model.json")
    assert json.loads(model.read_text())["step"] == 10


def _digests(folder: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_prefect_server_that_restarts_mid_run_leaves_a_run_that_completes_reusing_its_stages(
        prepared, small_sources, tmp_path):
    """The server of a `nas run` stops during training and is back 10 s later: the run goes
    on or fails saying what happened, and running it again completes, reusing every finished
    stage byte for byte."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli.local_server import local_server

    dataset_dir = prepared[0]
    root = tmp_path / "data"
    shutil.copytree(dataset_dir, root / "test-violin" / dataset_dir.name)
    undisturbed = _digests(dataset_dir)
    config = write_config(small_sources / "server-restart.yaml")
    run = [sys.executable, "-m", "flows.cli", "run", str(config), "--data-root", str(root), "--steps", "80",
           "--set", "checkpoint_every=10", "--set", "log_every=10", "--set", "optim.batch_size=4"]
    with local_server(migrated_home(tmp_path / "prefect-home")) as server:
        first = _start(run, env=server.env)
        deadline = time.time() + 600
        while not any(root.glob("test-violin/runs/*/checkpoints/checkpoint")):
            assert first.poll() is None and time.time() < deadline, first.stderr.read()[-3000:]
            time.sleep(0.05)
        server.restart(down_s=10)
        _, err = first.communicate(timeout=900)
        if first.returncode:
            assert "Traceback" not in err and "Prefect server" in err, err[-3000:]
        run_dir = next(root.glob("test-violin/runs/*/checkpoints")).parent
        finished = _digests(run_dir / "model") if first.returncode == 0 else {}
        again = subprocess.run(run, cwd=REPO, env=server.env, capture_output=True, text=True, timeout=900)
        with temporary_settings({PREFECT_API_URL: server.env["PREFECT_API_URL"]}):
            pipelines = flow_runs(flow="pipeline")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _digests(root / "test-violin" / dataset_dir.name) == undisturbed  # reused, not prepared again
    if first.returncode == 0:  # it rode the outage out: the server has its end, and nothing is redone
        assert [run.state.name for run in pipelines] == ["Completed", "Completed"]
        assert "are up to date; nothing to do" in again.stderr, again.stderr[-3000:]
        assert _digests(run_dir / "model") == finished
    else:
        assert "is up to date" in again.stderr, again.stderr[-3000:]

"""Shared fixtures: real audio from the bundled demo, small configs, a prepared dataset."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import yaml

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("WANDB_API_KEY", None)  # tests never go online
REPO = Path(__file__).resolve().parents[1]
PREFECT_DB = REPO / ".venv" / "prefect-template" / "prefect.db"  # migrated by `make install-test`


def migrated_home(home: Path) -> Path:
    """A Prefect home holding a copy of the database that `make install-test` migrated: a
    server started there skips the migrations (5 s of its 10 s of CPU). Without the copy (a
    pytest run without make) its server migrates its own, as a user's first one does."""
    home.mkdir(parents=True, exist_ok=True)
    if PREFECT_DB.is_file() and not (home / "prefect.db").exists():
        shutil.copyfile(PREFECT_DB, home / "prefect.db")
    return home


# A Prefect home and a cache of the session's own, made by the controller and inherited by
# xdist's workers: the local server that CLI runs start (when no server is set) lives there,
# not in the user's ~/.prefect, one for the whole session; XLA's compiled steps are shared.
if "PYTEST_XDIST_WORKER" not in os.environ:
    os.environ["PREFECT_HOME"] = str(migrated_home(Path(tempfile.mkdtemp(prefix="nas-tests-prefect-"))))
    os.environ["NAS_CACHE_DIR"] = tempfile.mkdtemp(prefix="nas-tests-cache-")  # not the user's ~/.cache/nas
# Every process of the session carries this mark (xdist's workers and whatever they start
# inherit it): at the end the controller checks that none it started is left running.
SESSION_MARK = "NAS_TEST_SESSION"
os.environ.setdefault(SESSION_MARK, uuid.uuid4().hex)

DEMO = REPO / "data" / "demo-violin"
FAKE_KEY = "fake-wandb-key-0123456789abcdef0123456789abcdef"


def demo_audio(name: str = "violin-00") -> tuple[np.ndarray, int]:
    return sf.read(DEMO / "audio" / f"{name}.flac", dtype="float32")


def demo_truth(name: str = "violin-00") -> np.ndarray:
    """Rows of (time_s, f0_hz, seconds to the nearest note boundary) every 10 ms."""
    return np.loadtxt(DEMO / "f0" / f"{name}.csv", delimiter=",", skiprows=1)


def example_controls(seed: int = 0, frames: int = 1000) -> dict:
    """Real-looking controls: a vibrato line with a glide up to where harmonics alias away."""
    t = np.arange(frames) / 250
    f0 = 330 * 2 ** (np.sin(t * 1.3) * 0.7) * (1 + 0.01 * np.sin(t * 35)) * np.where(t > 3.2, 4.0, 1.0)
    loudness = -35 + 25 * np.sin(t * 2 + seed) ** 2
    from nas.engine.engine import scale_inputs

    ld, f0s = scale_inputs(f0, loudness)
    return {"f0_hz": f0.astype(np.float32)[:, None], "loudness_db": loudness.astype(np.float32)[:, None],
            "ld_scaled": ld[:, None], "f0_scaled": f0s[:, None]}


MULTI_PROCESSING = {"direct_running_mode": "multi_processing"}  # the default of a user's config


def write_config(path: Path, **overrides) -> Path:
    config = {
        "name": "test-violin", "audio": ["audio/*"], "sample_rate": 16000, "frame_rate": 50,
        "centered": True, "example_secs": 4.0, "hop_secs": 2.0, "chunk_secs": 8.0,
        "eval_fraction": 0.25, "train_shards": 2, "eval_shards": 1,
        "crepe": {"capacity": "tiny", "viterbi": True},
        # Beam in the command's own process: a multi-processing worker would import Beam and
        # CREPE again; tests of killed, full-disk or noisy runs ask for the default's worker
        # process (MULTI_PROCESSING).
        "beam": {"direct_running_mode": "in_memory"},
        "wandb": {"project": "nas-tests", "mode": "offline"},
    }
    config.update(overrides)
    path.write_text(yaml.safe_dump(config))
    return path


def allocation_growth(script: str) -> dict[int, int]:
    """{block: bytes} from a script that prints "<block> <bytes>" lines, run in a process of
    its own: tracemalloc counts every thread's allocations, and in a suite's worker another
    test's thread once added 263 kB."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(tuple(map(int, line.split())) for line in done.stdout.splitlines() if line.strip())


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder built once per test run and shared by xdist's workers: the first to ask builds
    it behind a file lock, the others wait for it. Treat it as read-only."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "built-once" / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


def _own_copy(tmp_path_factory, shared: Path, name: str) -> Path:
    """This worker's copy of a shared build, where its tests may add runs and evaluations."""
    return Path(shutil.copytree(shared, tmp_path_factory.mktemp(name), dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns(".built")))


@pytest.fixture(scope="session")
def small_sources(tmp_path_factory) -> Path:
    """Three real violin excerpts in different formats, plus two unusable files: one folder
    for the whole run, so a dataset prepared from it is the same wherever it was prepared.
    Tests add their own config files to it."""
    def build(folder: Path) -> None:
        audio_dir = folder / "audio"
        audio_dir.mkdir()
        a, rate = demo_audio("violin-00")
        sf.write(audio_dir / "a-mono-32k.flac", a[: 14 * rate], rate)
        b, rate_b = demo_audio("violin-01")
        b = soxr.resample(b[: 12 * rate_b], rate_b, 44100)
        sf.write(audio_dir / "b-stereo-44k-24bit.wav", np.stack([b, 0.5 * b], axis=1), 44100, subtype="PCM_24")
        # violin-02's first 10 s as Vorbis, encoded once: libsndfile gives every Ogg stream a
        # random serial number, so an ogg written here would make a new dataset version each run.
        shutil.copy(REPO / "tests" / "data" / "c-vorbis.ogg", audio_dir / "c-vorbis.ogg")
        (audio_dir / "d-not-audio.wav").write_text("this is text, not a RIFF file")
        sf.write(audio_dir / "e-too-short.wav", a[: rate], rate)
        write_config(folder / "test.yaml")  # the `prepared` config

    return built_once(tmp_path_factory, "sources", build)


@pytest.fixture(scope="module")
def prefect_server():
    """A real Prefect server for the flows a test runs in its own process: the one this
    session's `nas` commands share (under its PREFECT_HOME), started by whichever needs it
    first, so a session starts one server, not one per module or worker. Tests read back
    only the runs and artifacts they made (by run id, or the newest of a key)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli.local_server import prefect_home, shared_server

    api = shared_server(prefect_home(), 180, announce=lambda line: None)
    with temporary_settings({PREFECT_API_URL: api}):
        yield api


@pytest.fixture(scope="session")
def deployments_server():
    """The session's shared server (as `prefect_server`) for test_deployments, which applies
    deployments and runs them on process workers: its `url`, and `env`, os.environ pointed at
    it. (test_worker_death keeps a server of its own: tried on this one beside
    test_deployments, its killed run once stayed Running past 4 heartbeats, cause not found.)"""
    from types import SimpleNamespace

    from flows.cli.local_server import prefect_home, shared_server

    api = shared_server(prefect_home(), 180, announce=lambda line: None)
    return SimpleNamespace(url=api.removesuffix("/api"), env={**os.environ, "PREFECT_API_URL": api})


def artifacts_of(*flow_run_ids) -> dict:
    """The Prefect artifacts the given flow runs created, by key, read back through the client."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=list(flow_run_ids))))

    return {a.key: a for a in asyncio.run(read())}


def flow_runs(*, flow: str | None = None, deployment: str | None = None, parent=None) -> list:
    """Flow runs read back through the client (in the server's default order): a flow's, a
    deployment's, or those started as subflows of the run `parent`."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterName, FlowFilter, FlowFilterName,
                                                FlowRunFilter, FlowRunFilterParentFlowRunId)

    filters = {}
    if flow:
        filters["flow_filter"] = FlowFilter(name=FlowFilterName(any_=[flow]))
    if deployment:
        filters["deployment_filter"] = DeploymentFilter(name=DeploymentFilterName(any_=[deployment]))
    if parent:
        filters["flow_run_filter"] = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent]))

    async def read():
        async with get_client() as client:
            return await client.read_flow_runs(**filters)

    return asyncio.run(read())


def _train_briefly(dataset_dir: Path, root: Path, preset: str, steps: int, log_every: int):
    from nas.config.presets import train_config
    from nas.store.datasets import load_metadata
    from nas.store.runs import run_layout
    from nas.training.loop import train

    config = train_config(preset, {"steps": steps, "log_every": log_every, "sample_every": 1000,
                                   "optim.batch_size": 4, "optim.learning_rate": 3e-3})
    layout = run_layout(root, load_metadata(dataset_dir), config)
    train(dataset_dir, layout, config)
    return layout


def _prepare_once(small_sources: Path, tmp_path_factory) -> Path:
    """The data root of the small dataset, prepared once per test run by the plain-Python path (tiny CREPE)."""
    def build(root: Path) -> None:
        from nas.config import load_config
        from nas.data.prepare import prepare_dataset

        prepare_dataset(*load_config(small_sources / "test.yaml"), root)

    return built_once(tmp_path_factory, "prepared", build)


@pytest.fixture(scope="session")
def prepared(small_sources, tmp_path_factory):
    """The small dataset prepared once per test run, in a data root of this worker's own."""
    from nas.config import load_config

    root = _own_copy(tmp_path_factory, _prepare_once(small_sources, tmp_path_factory), "data")
    config, base = load_config(small_sources / "test.yaml")
    (dataset_dir,) = [p.parent for p in (root / config.name).glob("*/dataset.json")]
    return dataset_dir, config, base, root


@pytest.fixture(scope="session")
def trained_run(prepared, small_sources, tmp_path_factory):
    """A cnn-tiny model trained briefly (60 steps) on the prepared dataset once per test run,
    copied into this worker's data root's runs/."""
    from nas.store.runs import RunLayout

    root = prepared[3]

    def build(folder: Path) -> None:
        shared = _prepare_once(small_sources, tmp_path_factory)
        layout = _train_briefly(next(shared.glob("*/*/dataset.json")).parent, folder, "cnn-tiny", 60, 20)
        (folder / "run").write_text(str(layout.dir.relative_to(folder)))

    built = built_once(tmp_path_factory, "trained", build)
    run = (built / "run").read_text()
    shutil.copytree(built / run, root / run)
    return RunLayout(root / run)


@pytest.fixture(scope="session")
def vst_run(prepared, small_sources, tmp_path_factory):
    """The ddsp-vst preset (power, 50 frames a second) trained briefly (20 steps) on the
    prepared dataset once per test run, in a data root of this worker's own that holds a copy
    of the dataset."""
    from nas.store.runs import RunLayout

    def build(folder: Path) -> None:
        shared = _prepare_once(small_sources, tmp_path_factory)
        shutil.copytree(shared, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".built"))
        layout = _train_briefly(next(folder.glob("*/*/dataset.json")).parent, folder, "ddsp-vst", 20, 10)
        (folder / "run").write_text(str(layout.dir.relative_to(folder)))

    root = _own_copy(tmp_path_factory, built_once(tmp_path_factory, "vst", build), "vst-data")
    return root, RunLayout(root / (root / "run").read_text())


DEMO_MODELS = REPO / "tests" / "data" / "demo-models"


def _demo_run(root: Path, norm: str) -> Path:
    """A run folder of the committed demo model with this normalisation, beside its
    dataset's statistics: what render, transfer and play load."""
    import json
    import shutil

    dataset = root / "demo-violin" / "dataset"
    if not dataset.exists():
        dataset.mkdir(parents=True)
        shutil.copy(DEMO_MODELS / "statistics.json", dataset / "statistics.json")
    run = root / "demo-violin" / "runs" / norm
    shutil.copytree(DEMO_MODELS / norm, run / "model")
    (run / "config.json").write_text(json.dumps({"dataset": {"dir": str(dataset)}}))
    return run


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The demo's streamable model, norm `frame` (the default): 750 steps, what `make demo`
    trained until 2026-12-06; committed in tests/data/demo-models/frame."""
    return _demo_run(tmp_path_factory.mktemp("demo-root"), "frame")


@pytest.fixture(scope="session")
def old_demo_run(tmp_path_factory) -> Path:
    """The demo's model as it was before norm `frame`: ddsp's sequence Normalize."""
    return _demo_run(tmp_path_factory.mktemp("old-demo-root"), "sequence")


def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`make test`: `-n 2 --dist loadgroup`), the tests marked slow (a
    minute or more) are handed out first, so the short ones fill in around them and both
    workers end together (collected by file, one scenario of minutes came last). Each
    trained model is built once, by whichever worker asks first (`built_once`). No test is
    put in an xdist group: under pytest 9.2 a group does nothing (xdist 3.8 marks it in
    `item._nodeid`, which pytest 9.2 does not read)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's standalone S3 server on 127.0.0.1 at a free port: a real HTTP endpoint that the
    ordinary clients (s3fs, boto3, W&B's) reach through the standard AWS variables, set here
    for the session as a user would set them."""
    from tests.s3_server import moto_server

    with moto_server() as (url, _):
        names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
        saved = {k: os.environ.get(k) for k in names}
        os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="nas-test-key-id",
                          AWS_SECRET_ACCESS_KEY="nas-test-secret-0123456789", AWS_DEFAULT_REGION="us-east-1")
        yield url
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture
def bucket(s3_endpoint):
    """A new, empty bucket of the test's own; its name."""
    import uuid

    import s3fs

    name = f"nas-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
    return name


def _left_running() -> list[str]:
    """This session's processes still running, but for pytest's own: this one and xdist's
    workers, which go as the session ends."""
    import psutil

    left = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if process.pid == os.getpid() or process.environ().get(SESSION_MARK) != os.environ[SESSION_MARK]:
                continue
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        command = " ".join(process.info["cmdline"] or [])
        if "exec(eval(sys.stdin.readline()))" not in command:  # execnet's bootstrap: an xdist worker
            left.append(f"{process.pid}: {command[:240]}")
    return left


def pytest_sessionfinish(session, exitstatus):
    """On the controller, after the workers: the shared server stops promptly (a worker
    started it), the session's Prefect home and cache go (XLA's compiled steps among them:
    6 MB each), and no server, worker, jackd or S3 server the suite started may outlive it
    (each is given 30 s to finish stopping)."""
    if hasattr(session.config, "workerinput"):
        return
    from flows.cli.local_server import prefect_home, stop_shared_server

    failures = []
    started = time.monotonic()
    stop_shared_server(prefect_home())
    if (took := time.monotonic() - started) >= 10:
        failures.append(f"the shared Prefect server took {took:.0f} s to stop")
    for folder in (prefect_home(), os.environ["NAS_CACHE_DIR"]):
        shutil.rmtree(folder, ignore_errors=True)
    deadline = time.monotonic() + 30
    while (left := _left_running()) and time.monotonic() < deadline:
        time.sleep(1)
    if left:
        failures.append("processes the suite started and left running:\n  " + "\n  ".join(left))
    if failures:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.ensure_newline()
        for failure in failures:
            reporter.write_line(failure, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""Data roots and audio in a bucket: moto's S3 server over HTTP, reached by the ordinary
clients through the standard AWS variables (tests/conftest.py: s3_endpoint)."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import s3fs

from nas.config import load_config
from nas.data.prepare import prepare_dataset
from nas.data.reader import record_provider
from nas.locations import create_new, location
from nas.store import cache
from nas.store.datasets import load_metadata
from tests.conftest import MULTI_PROCESSING, REPO, migrated_home, write_config
from tests.s3_server import Relay, moto_server


def _fs():
    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)  # others write the bucket


def test_of_writers_racing_for_a_commit_object_exactly_one_publishes(bucket):
    target = location(f"s3://{bucket}/x/dataset.json")
    won = [None] * 6

    def write(i):
        won[i] = create_new(target, f"writer {i}".encode())

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(won))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(won) == 1
    assert _fs().cat(f"{bucket}/x/dataset.json") == f"writer {won.index(True)}".encode()


def test_a_folder_in_a_bucket_is_replaced_whole_with_its_commit_object_last(bucket):
    from nas.atomic import replace_dir, staging_dir
    from nas.locations import is_remote

    final = location(f"s3://{bucket}/run/model")
    for files, commit in (({"weights.index": b"1", "old.bin": b"x"}, b"v1"), ({"weights.index": b"2"}, b"v2")):
        staging = staging_dir(final)
        assert not is_remote(staging)  # written here, uploaded by replace_dir
        for name, data in {**files, "model.json": commit}.items():
            (staging / name).write_bytes(data)
        assert replace_dir(staging, final, commit="model.json") and not staging.exists()
    fs = _fs()
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.find(f"{bucket}/run/model")) == ["model.json", "weights.index"]
    assert fs.cat(f"{bucket}/run/model/weights.index") == b"2" and fs.cat(f"{bucket}/run/model/model.json") == b"v2"


@pytest.fixture(scope="module")
def bucket_dataset(s3_endpoint, small_sources, tmp_path_factory):
    """The small sources uploaded to a bucket and prepared there, root and audio both in it."""
    name = "nas-prepared"
    fs = _fs()
    fs.mkdir(name)
    fs.put(f"{small_sources / 'audio'}/", f"{name}/audio/", recursive=True)
    config_dir = tmp_path_factory.mktemp("bucket-config")
    config, base = load_config(write_config(config_dir / "test.yaml", audio=[f"s3://{name}/audio/"]))
    root = location(f"s3://{name}/root")
    return prepare_dataset(config, base, root), name, config_dir / "test.yaml"


def test_a_dataset_prepared_in_a_bucket_is_the_local_root_s_byte_for_byte(bucket_dataset, prepared):
    remote, name, _ = bucket_dataset
    local, *_ = prepared
    assert remote.name == local.name  # the same version: sources enter it by their bytes, not where they are
    shards = sorted(p.name for p in local.glob("*.tfrecord-*"))
    assert len(shards) == 3
    for shard in shards:
        assert (remote / shard).read_bytes() == (local / shard).read_bytes(), shard
    assert json.loads((remote / "statistics.json").read_text()) == json.loads((local / "statistics.json").read_text())
    remote_meta, local_meta = load_metadata(remote), load_metadata(local)
    assert remote_meta.counts == local_meta.counts and remote_meta.chunks == local_meta.chunks
    manifest = {Path(row["path"]).name: row for row in _rows(remote / "manifest.parquet")}
    assert manifest["a-mono-32k.flac"]["path"] == f"s3://{name}/audio/a-mono-32k.flac"
    assert "cannot decode" in manifest["d-not-audio.wav"]["reason"]
    # the commit object vouches for what a machine stages: every shard and the statistics
    assert set(remote_meta.objects) == {*shards, "statistics.json"}
    for file, digest in remote_meta.objects.items():
        data = (remote / file).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (digest.bytes, digest.sha256)
    assert "objects" not in json.loads((local / "dataset.json").read_text())  # a local root's file is unchanged
    leftovers = [p for p in _fs().find(f"{name}/root") if "/." in p]
    assert leftovers == []  # no spill folder, no records-done marker


def _rows(path):
    from nas.store.tables import read_rows

    return read_rows(path)


def test_a_machine_stages_the_records_checks_them_and_reads_them_with_ddsp(bucket_dataset, tmp_path, monkeypatch):
    remote, *_ = bucket_dataset
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    local = cache.stage_dataset(remote)
    assert local == tmp_path / "cache" / "datasets" / "test-violin" / remote.name
    meta = load_metadata(local)
    for split in ("train", "eval"):
        examples = list(record_provider(local, split, meta).get_dataset(shuffle=False))
        assert len(examples) == meta.counts.of(split) > 0
    # a corrupted cached object is found out and fetched again; intact ones are not
    shard = max(local.glob("train.tfrecord-*"), key=lambda p: p.stat().st_size)  # a small split can leave one empty
    good = shard.read_bytes()
    shard.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:])
    untouched = local / "statistics.json"
    before = untouched.stat().st_mtime_ns
    os.utime(untouched, ns=(before - 10**9, before - 10**9))
    assert cache.stage_dataset(remote) == local
    assert shard.read_bytes() == good
    # least recently used first: with room for nothing but the version in use, an older version goes
    other = tmp_path / "cache" / "datasets" / "test-violin" / "0123456789abcdef"
    other.mkdir()
    (other / "train.tfrecord-00000-of-00001").write_bytes(b"x" * 1000)
    (other / "dataset.json").write_text("{}")
    os.utime(other / "train.tfrecord-00000-of-00001", (1, 1))
    removed = cache.trim(keep=local, limit=sum(p.stat().st_size for p in local.iterdir()))
    assert other / "train.tfrecord-00000-of-00001" in removed and not (other / "dataset.json").exists()
    assert all(p.exists() for p in local.iterdir())


def _nas(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, cwd=cwd or REPO)


def test_bucket_names_follow_each_store_s_rule():
    from nas.locations import BUCKET_NAMES

    s3, gcs = BUCKET_NAMES["s3"], BUCKET_NAMES["gs"]
    assert s3.fullmatch("lab-audio.2026") and not any(s3.fullmatch(n) for n in ("lab_audio", "ab", "-lab", "Lab"))
    assert gcs.fullmatch("lab_audio") and not any(gcs.fullmatch(n) for n in ("ab", "Lab", "lab_"))


def test_bad_bucket_locations_stop_before_any_work_naming_the_url(bucket, small_sources, tmp_path):
    config = write_config(tmp_path / "c.yaml", audio=[f"s3://{bucket}/nothing/*.wav"])
    missing = _nas("prepare", str(config), "--data-root", "s3://no-such-bucket-nas/root")
    assert missing.returncode == 2
    invalid = _nas("prepare", str(config), "--data-root", "s3://Lab_Audio!/root")  # refused before asking S3
    assert invalid.returncode == 2 and invalid.stderr.strip() == (
        "nas: s3://Lab_Audio!/root: 'Lab_Audio!' is not a valid bucket name (3 to 63 lower-case letters, digits, "
        "dots and hyphens, beginning and ending with a letter or digit)")
    nobody = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
              "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"}
    anonymous = _nas("prepare", str(config), "--data-root", f"s3://{bucket}/root", env=nobody)
    assert anonymous.returncode == 2 and anonymous.stderr.strip() == (
        f"nas: s3://{bucket}/root: no credentials for the object store: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"), anonymous.stderr
    assert missing.stderr.strip() == "nas: s3://no-such-bucket-nas/root: bucket s3://no-such-bucket-nas does not exist"
    no_audio = _nas("prepare", str(config), "--data-root", f"s3://{bucket}/root")
    assert no_audio.returncode == 2
    assert f"audio: 's3://{bucket}/nothing/*.wav' matches no files" in no_audio.stderr
    # a short access key id that is also inside the bucket's name: a name, not a secret, and
    # whole values only are redacted
    closed = _nas("prepare", str(config), "--data-root", "s3://nobucket/root",
                  env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1", "AWS_ACCESS_KEY_ID": "k"})
    assert closed.returncode == 2
    assert closed.stderr.strip().startswith(
        "nas: s3://nobucket/root: cannot reach the endpoint set in AWS_ENDPOINT_URL ("), closed.stderr
    assert "127.0.0.1" not in closed.stderr  # the endpoint is the environment's, never printed
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes connections (the kernel does) and never answers
        start = time.monotonic()
        slow = _nas("prepare", str(config), "--data-root", f"s3://{bucket}/root",
                    env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent.getsockname()[1]}", "NAS_REACH_SECONDS": "3"})
        waited = time.monotonic() - start
    assert slow.returncode == 2 and slow.stderr.strip() == (
        f"nas: s3://{bucket}/root: the endpoint set in AWS_ENDPOINT_URL did not answer within 3 s"), slow.stderr
    assert waited < 60  # a bounded wait, where the clients' own retries take minutes
    with moto_server(checks_credentials=True) as (strict, _):
        refused = _nas("prepare", str(config), "--data-root", f"s3://{bucket}/root", env={"AWS_ENDPOINT_URL": strict})
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith(f"nas: s3://{bucket}/root: access to s3://{bucket} refused (")
    assert refused.stderr.strip().endswith("check the credentials") and "nas-test-secret" not in refused.stderr
    assert _fs().find(bucket) == []


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `prefect server start`: its services run, the one that takes back expired
    leases among them (every 5 s here; 15 s by default)."""
    from flows.cli.local_server import local_server

    os.environ["PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS"] = "5"
    try:
        with local_server(migrated_home(tmp_path_factory.mktemp("prefect-home"))) as running:
            yield running
    finally:
        del os.environ["PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS"]


@pytest.mark.slow
def test_the_dag_on_machines_that_share_only_the_bucket(server, bucket, small_sources, tmp_path, s3_endpoint):
    """`nas` commands, each on a machine of its own (its own home and so cache, working folder
    and Prefect home; the Prefect server is shared):
    1. `nas run` with audio and data root in the bucket: the whole DAG, 20 steps;
    2. `nas train --steps 60` goes on with that run, and is killed during a checkpoint upload;
    3. `nas run --steps 60` waits for the dead trainer's lease on the run to lapse, resumes from
       the bucket's latest checkpoint, evaluates and exports.
    Afterwards nothing of the data root is on any machine's disk but its cache, and neither
    the endpoint nor the secret key is in any line printed, object written or local file."""
    import re
    import signal

    from nas.store.tables import read_rows

    fs = _fs()
    for name in ("a-mono-32k.flac", "b-stereo-44k-24bit.wav"):
        fs.put_file(str(small_sources / "audio" / name), f"{bucket}/cello/{name}")

    def machine(role: str) -> tuple[dict, Path]:
        folder = tmp_path / role
        for sub in ("home", "work", "prefect"):
            (folder / sub).mkdir(parents=True)
        env = {"HOME": str(folder / "home"), "PREFECT_HOME": str(folder / "prefect"), "NAS_CACHE_DIR": "",
               "PREFECT_API_URL": server.env["PREFECT_API_URL"]}  # the default cache, in the empty home
        return {**os.environ, **env}, folder / "work"

    config = write_config(tmp_path / "bucket-violin.yaml", name="bucket-violin", audio=[f"s3://{bucket}/cello/"])
    root = f"s3://{bucket}/nas"
    steps = ["--set", "optim.batch_size=4", "--set", "log_every=10", "--set", "checkpoint_every=10",
             "--set", "sample_every=1000"]
    env, work = machine("first")
    done = _nas("run", str(config), "--data-root", root, "--steps", "20", *steps, env=env, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert lines["dataset"].startswith(f"{root}/bucket-violin/")
    assert lines["listening report"].startswith(f"{root}/bucket-violin/runs/")
    assert lines["exports"].startswith(f"{root}/bucket-violin/runs/")
    assert sorted(p.name for p in (work.parent / "home" / ".cache" / "nas").iterdir()) == [
        "audio", "checkpoints", "datasets", "folders", "wandb", "xla"]  # xla: the step it compiled
    status = _nas("status", "--data-root", root, env=env, cwd=work)
    assert status.returncode == 0 and "bucket-violin" in status.stdout, status.stderr
    (run,) = fs.glob(f"{bucket}/nas/bucket-violin/runs/*")

    env, work = machine("second")
    train = ["train", str(config), "--data-root", root, "--steps", "60", *steps]
    second = subprocess.Popen([sys.executable, "-m", "flows.cli", *train], cwd=work, env=env, text=True,
                              start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while not fs.glob(f"{run}/checkpoints/ckpt-[3-6]0.index"):
        assert second.poll() is None and time.time() < deadline, second.stderr.read()[-3000:]
        time.sleep(0.02)
    os.killpg(second.pid, signal.SIGKILL)  # an upload under way: the state file comes last, if at all
    second.wait()

    env, work = machine("third")
    third = _nas("run", str(config), "--data-root", root, "--steps", "60", *steps, env=env, cwd=work)
    assert third.returncode == 0, third.stderr[-3000:]
    resumed = int(re.search(r"resumed \S+ from its checkpoint at step (\d+)", third.stderr).group(1))
    assert 20 <= resumed < 60  # from the bucket: the first machine's step 20, or the second's later one
    rows = read_rows(location(f"s3://{run}/metrics.parquet"))
    assert [r["step"] for r in rows if r["loss"] == r["loss"]] == [10, 20, 30, 40, 50, 60]  # each step once
    model = json.loads(fs.cat(f"{run}/model/model.json"))
    assert model["step"] == 60 and f"model {model['model_version']}: s3://{run}/model" in third.stdout
    history = read_rows(location(f"{root}/bucket-violin/evaluations.parquet"))
    assert [r["model_version"] for r in history][-1] == model["model_version"]
    assert json.loads(fs.cat(f"{run}/export/export.json"))["model_version"] == model["model_version"]
    assert (work.parent / "home" / ".cache" / "nas" / "datasets" / "bucket-violin").is_dir()  # fetched itself

    objects = fs.find(f"{bucket}/nas")
    secret, endpoint = os.environ["AWS_SECRET_ACCESS_KEY"], s3_endpoint.removeprefix("http://")
    for text in (done.stdout, done.stderr, third.stdout, third.stderr, status.stdout):
        assert secret not in text and endpoint not in text
    for name in objects:
        data = fs.cat(name)
        assert secret.encode() not in data and endpoint.encode() not in data, name
    references = set()
    server_files = Path(server.env["PREFECT_HOME"]).rglob("*")  # its database: parameters, logs, artifacts
    for path in [*tmp_path.rglob("*"), *server_files]:
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and endpoint.encode() not in data, path
            if f"s3://{bucket}/nas/bucket-violin/".encode() in data and "wandb" in path.parts:
                references.add(path.suffix)
    assert ".wandb" in references  # the W&B runs' artifacts refer to the bucket's objects
    (record,) = [o for o in objects if o.endswith(".wandb.json")]
    assert "error" not in json.loads(fs.cat(record))  # the dataset artifact went to (offline) W&B
    for role in ("first", "second", "third"):
        assert list((tmp_path / role / "work").iterdir()) == []  # nothing of the data root is local


def test_a_lock_in_a_bucket_is_a_prefect_lease_that_one_holder_has_at_a_time(server, bucket):

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tasks.leases import lease_name, lock

    path = location(f"s3://{bucket}/root/violin/.pipeline.lock")
    assert lease_name(path) != lease_name(location(f"s3://{bucket}/other/violin/.pipeline.lock"))
    events, held = [], threading.Event()

    def first():
        with lock(path):
            held.set()
            events.append("first in")
            time.sleep(2)
            events.append("first out")

    def second():
        held.wait()
        with lock(path, waiting=lambda: events.append("second waits")):
            events.append("second in")

    def on_the_server(holder):
        def run():  # a thread starts with no settings context: without this, Prefect's ephemeral server
            with temporary_settings({PREFECT_API_URL: server.env["PREFECT_API_URL"]}):
                holder()
        return run

    threads = [threading.Thread(target=on_the_server(first)), threading.Thread(target=on_the_server(second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert events == ["first in", "second waits", "first out", "second in"]
    assert _fs().find(bucket) == []  # a lease, not an object
    from prefect.client.orchestration import get_client

    with temporary_settings({PREFECT_API_URL: server.env["PREFECT_API_URL"]}):
        with get_client(sync_client=True) as client:  # the limit is the shared server's
            assert client.read_global_concurrency_limit_by_name(lease_name(path)).active_slots == 0


def test_dask_runner_reads_and_writes_the_bucket_and_writes_empty_shards(bucket_dataset, prepared, tmp_path,
                                                                         monkeypatch):
    """Beam's Dask runner on two worker processes, which find the endpoint in their environment;
    eval split over more shards than it has examples, so some shards are empty objects."""
    from distributed import Client, LocalCluster

    from nas.data.tfrecord import read_records

    _, name, _ = bucket_dataset
    local = prepared[0]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        config, base = load_config(write_config(
            tmp_path / "dask.yaml", audio=[f"s3://{name}/audio/"], eval_shards=8,
            beam={"runner": "DaskRunner", "options": {"dask_client_address": cluster.scheduler_address}}))
        remote = prepare_dataset(config, base, location(f"s3://{name}/dask-root"))
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(executed) == 2 and all(n > 0 for n in executed.values()), executed
    for shard in local.glob("train.tfrecord-*"):  # the train split's shards do not depend on the eval's
        assert (remote / shard.name).read_bytes() == shard.read_bytes()
    evals = sorted(remote.glob("eval.tfrecord-*"), key=str)
    assert len(evals) == 8 and any(p.stat().st_size == 0 for p in evals)
    assert sorted(r for p in evals for r in read_records(p)) == sorted(
        r for p in local.glob("eval.tfrecord-*") for r in read_records(p))
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    staged = cache.stage_dataset(remote)
    meta = load_metadata(staged)
    assert len(list(record_provider(staged, "eval", meta).get_dataset(shuffle=False))) == meta.counts.eval


PREPARE = """
import logging, sys
from nas.config import load_config
from nas.data.prepare import prepare_dataset
from nas.locations import location
logging.basicConfig(level=logging.INFO)
config, base = load_config(sys.argv[1])
print(prepare_dataset(config, base, location(sys.argv[2])))
"""


def test_killed_and_racing_preparations_in_a_bucket_publish_one_version_once(bucket_dataset, prepared, tmp_path):
    """A preparation killed during its shard writes publishes nothing; two more started at once
    both finish with the version the uninterrupted local run made, published by one of them."""
    import signal

    _, name, _ = bucket_dataset
    local = prepared[0]
    config = write_config(tmp_path / "race.yaml", audio=[f"s3://{name}/audio/"], beam=MULTI_PROCESSING)
    root = f"s3://{name}/race-root"
    version = f"{name}/race-root/test-violin/{local.name}"
    fs = _fs()

    def start():
        return subprocess.Popen([sys.executable, "-c", PREPARE, str(config), root], cwd=REPO, text=True,
                                start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    killed = start()
    deadline = time.time() + 600
    while not fs.glob(f"{version}/train.tfrecord-*"):
        assert killed.poll() is None, killed.stderr.read()[-2000:]
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert not fs.exists(f"{version}/dataset.json")  # nothing published: shards are not a dataset

    racers = [start(), start()]
    outputs = [r.communicate(timeout=900) for r in racers]
    assert [r.returncode for r in racers] == [0, 0], [err[-2000:] for _, err in outputs]
    assert {out.strip().splitlines()[-1] for out, _ in outputs} == {f"s3://{version}"}
    said = [err for _, err in outputs if "published test-violin version" in err or "is up to date" in err]
    assert len(said) == 1  # the other one published
    remote = location(f"s3://{version}")
    for shard in local.glob("*.tfrecord-*"):
        assert (remote / shard.name).read_bytes() == shard.read_bytes()
    assert load_metadata(remote).counts == load_metadata(local).counts


def test_an_object_store_that_stops_answering_is_retried_then_named(bucket, small_sources, s3_endpoint, tmp_path):
    """Gone for good in the middle of a preparation: after retries with back-off, the command
    fails with one line that names the bucket, not the endpoint, and publishes nothing. Gone
    for a moment as the next run starts: the retries ride it out and that run publishes."""

    relay = Relay(s3_endpoint)
    relay.start()
    fs = _fs()
    fs.put_file(str(small_sources / "audio" / "a-mono-32k.flac"), f"{bucket}/audio/a.flac")
    env = {"AWS_ENDPOINT_URL": relay.url}
    config = write_config(tmp_path / "outage.yaml", audio=[f"s3://{bucket}/audio/"])
    root = f"s3://{bucket}/root"

    cut = subprocess.Popen([sys.executable, "-m", "flows.cli", "prepare", str(config), "--data-root", root],
                           cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={**os.environ, **env, "AWS_MAX_ATTEMPTS": "3"})  # fewer retries: a shorter test
    deadline = time.time() + 600
    while not fs.glob(f"{bucket}/root/*/*/.spill-*"):
        assert cut.poll() is None and time.time() < deadline, cut.stderr.read()[-2000:]
        time.sleep(0.05)
    relay.stop()
    out, err = cut.communicate(timeout=600)
    assert cut.returncode == 1, err[-3000:]
    assert err.strip().splitlines()[-1].startswith(f"nas: {root}, s3://{bucket}/audio/: the endpoint set in "
                                                   "AWS_ENDPOINT_URL stopped answering (")
    assert relay.url.removeprefix("http://") not in out + err
    assert not fs.glob(f"{bucket}/root/*/*/dataset.json")

    threading.Timer(2.0, relay.start).start()
    again = _nas("prepare", str(config), "--data-root", root, env=env)  # starts while it is away
    relay.stop()
    assert again.returncode == 0, again.stderr[-3000:]
    version = again.stdout.strip().splitlines()[-1].removeprefix("s3://")
    assert fs.exists(f"{version}/dataset.json") and fs.glob(f"{version}/train.tfrecord-*")


def test_an_object_deleted_while_it_is_read_is_skipped_and_the_rest_prepared(bucket, small_sources, s3_endpoint,
                                                                              tmp_path):
    """One of two recordings is deleted halfway through its download (the connection cut
    there, so the client asks for the rest and finds it gone): it is skipped with its reason,
    the other makes the dataset, and no part of the download is left in the cache."""
    relay = Relay(s3_endpoint)
    relay.start()
    fs = _fs()
    fs.put_file(str(small_sources / "audio" / "a-mono-32k.flac"), f"{bucket}/audio/a.flac")
    fs.put_file(str(small_sources / "audio" / "b-stereo-44k-24bit.wav"), f"{bucket}/audio/b.wav")
    relay.cut_download(f"/{bucket}/audio/b.wav", 200_000, lambda: fs.rm(f"{bucket}/audio/b.wav"))
    config = write_config(tmp_path / "vanish.yaml", audio=[f"s3://{bucket}/audio/"])
    cache = tmp_path / "cache"
    done = _nas("prepare", str(config), "--data-root", str(tmp_path / "data"),
                env={"AWS_ENDPOINT_URL": relay.url, "NAS_CACHE_DIR": str(cache)})
    relay.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert relay.cuts == {}  # the cut happened
    (manifest,) = (tmp_path / "data").glob("test-violin/*/manifest.parquet")
    rows = {Path(r["path"]).name: r for r in pq.read_table(manifest).to_pylist()}
    assert rows["b.wav"]["status"] == "skipped" and rows["b.wav"]["reason"] == "gone from the bucket since it was listed"
    assert rows["a.flac"]["status"] == "ok"
    assert [p.name for p in (cache / "audio").iterdir()] == [f"{rows['a.flac']['sha256']}.flac"]

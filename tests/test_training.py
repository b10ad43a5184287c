"""Training: two devices under MirroredStrategy, a batch in parts, a killed run resumed, the loss going down."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from compiled_step import other_dataset  # noqa: E402

TRAIN = """
import json, logging, sys
from pathlib import Path
logging.basicConfig(level=logging.INFO, format="%(message)s")
from nas.config.presets import train_config
from nas.training.loop import train
from nas.store.runs import RunLayout
config = train_config("cnn-tiny", json.loads(sys.argv[3]))
print("SUMMARY " + train(Path(sys.argv[1]), RunLayout(Path(sys.argv[2])), config).model_dump_json())
print("UNUSED", sorted(m for m in ("ddsp.training.evaluators", "mir_eval") if m in sys.modules))
"""

MIRRORED = """
import json, sys
from pathlib import Path
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from nas.store.datasets import load_metadata
from nas.config.presets import train_config
from nas.training import data
from nas.training.loop import Trainer, batch_parts, train
from nas.store.runs import RunLayout

# Silent noise: each part of a batch draws its own, so only without it can steps be compared
tf.random.stateless_uniform = lambda shape, *args, **kwargs: tf.zeros(shape)
dataset_dir, metadata = Path(sys.argv[1]), load_metadata(Path(sys.argv[1]))
config = train_config("cnn-tiny", {"steps": 2, "log_every": 1, "optim.batch_size": 4})

def trainer_and_batches(strategy):
    trainer = Trainer(config, metadata, strategy)
    examples = data.examples(dataset_dir, "train", metadata, trainer.preprocessor)
    batches = data.training_batches(examples, 4, seed=0)
    return trainer, iter(strategy.experimental_distribute_dataset(batches))

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
trainer, iterator = trainer_and_batches(strategy)
one, one_iterator = trainer_and_batches(tf.distribute.get_strategy())
one.parts = 1  # the whole batch at once
for mine, theirs in zip(one.model.trainable_variables, trainer.model.trainable_variables):
    mine.assign(theirs.values[0])
before = [v.numpy().copy() for v in trainer.model.trainable_variables]
steps = [[float(x) for x in trainer.train_step(iterator)] for _ in range(2)]
replicas = [strategy.experimental_local_results(v) for v in trainer.model.trainable_variables]
result = {
    "replicas": strategy.num_replicas_in_sync,
    "parts": {"mirrored": trainer.parts, "one device": batch_parts(4, tf.distribute.get_strategy()),
              "odd batch": batch_parts(3, tf.distribute.get_strategy())},
    "copies": sorted({len(r) for r in replicas}),
    "in_sync": all(np.array_equal(r[0].numpy(), r[1].numpy()) for r in replicas),
    "devices": sorted({c.device.rsplit("/", 1)[-1] for r in replicas for c in r}),
    "changed": sum(not np.array_equal(b, v.numpy()) for b, v in zip(before, trainer.model.trainable_variables)),
    "variables": len(before),
    "steps": steps,  # loss and gradient norm
    "one_device_step": [float(x) for x in one.train_step(one_iterator)],
}
# the loop on the same strategy; without XLA, whose compile the steps above already paid
summary = train(dataset_dir, RunLayout(Path(sys.argv[2])), config.model_copy(update={"jit_compile": False}),
                strategy=strategy)
result["loop_step"] = summary.step
print("RESULT " + json.dumps(result))
"""


def _last_json(output: str, tag: str) -> dict:
    line = [line for line in output.splitlines() if line.startswith(tag + " ")][-1]
    return json.loads(line[len(tag) + 1:])


@pytest.mark.slow
def test_two_training_steps_under_mirrored_strategy_and_in_parts_as_on_one_device(prepared, tmp_path):
    """Two logical CPU devices under MirroredStrategy: two steps, the variables in sync. A
    replica's batch is computed in two parts at once on 2 cores (an odd batch in one): the
    first step's loss and gradient norm, over two replicas in two parts each, are those of
    the whole batch in one piece on one device."""
    dataset_dir = prepared[0]
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(dataset_dir), str(tmp_path / "run")], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = _last_json(done.stdout, "RESULT")
    assert result["replicas"] == 2 and result["copies"] == [2]
    assert result["parts"] == {"mirrored": 2, "one device": 2, "odd batch": 1}  # per replica, on 2 cores
    assert result["devices"] == ["device:CPU:0", "device:CPU:1"]
    assert result["in_sync"]  # one all-reduced update applied on both devices
    assert result["changed"] == result["variables"]
    assert np.isfinite(result["steps"]).all()
    # the batch on two replicas, in two parts on each: the loss and gradient norm of the whole
    # batch on one device. The norm sums gradients whose terms cancel, in another order: it
    # differed by 2.0e-5 of itself on one machine (the loss by 7e-7), by less on others.
    (loss, norm), (one_loss, one_norm) = result["steps"][0], result["one_device_step"]
    np.testing.assert_allclose(loss, one_loss, rtol=1e-5)
    np.testing.assert_allclose(norm, one_norm, rtol=1e-4)
    assert result["loop_step"] == 2 and (tmp_path / "run" / "model" / "model.json").exists()


def test_xla_keeps_compiled_steps_in_the_cache_of_the_process_s_own_machine(tmp_path, monkeypatch):
    """TF_XLA_FLAGS names the cache of this process's NAS_CACHE_DIR, per machine (TensorFlow,
    CPU, GPUs), even when it inherits the flag from a nas process on another cache; the
    user's own cache directory and other flags stand; an unwritable cache is not asked for."""
    from nas import machine

    flag = "--tf_xla_persistent_cache_directory"
    inherited = f"{flag}=/elsewhere/xla/0123456789abcdef"
    monkeypatch.setenv("TF_XLA_FLAGS", f"--tf_xla_enable_lazy_compilation=false {inherited}")
    monkeypatch.setenv(machine.OURS, inherited)
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    machine.persist_compiled_steps()
    ours = os.environ["TF_XLA_FLAGS"].split()
    assert ours[0] == "--tf_xla_enable_lazy_compilation=false" and len(ours) == 2
    folder = Path(ours[1].removeprefix(f"{flag}="))
    assert folder.parent == tmp_path / "cache" / "xla" and len(folder.name) == 16
    assert os.environ[machine.OURS] == ours[1]

    monkeypatch.setenv("TF_XLA_FLAGS", f"{flag}=/users/own")  # the user's
    monkeypatch.delenv(machine.OURS)
    machine.persist_compiled_steps()
    assert os.environ["TF_XLA_FLAGS"] == f"{flag}=/users/own" and machine.OURS not in os.environ

    monkeypatch.delenv("TF_XLA_FLAGS")
    checked = []
    monkeypatch.setattr(machine.os, "access", lambda path, mode: checked.append(path) and False)
    machine.persist_compiled_steps()
    assert "TF_XLA_FLAGS" not in os.environ and checked == [tmp_path]  # the nearest folder that exists


def _compiled_steps(cache: Path) -> dict[Path, int]:
    """The steps XLA saved in a machine's cache (`nas.machine`), each with its write time."""
    return {p: p.stat().st_mtime_ns for p in (cache / "xla").rglob("*.pb")}


def test_another_dataset_s_training_loads_the_step_that_the_first_compiled(prepared, tmp_path):
    """Two fresh trainings of the same settings and shapes, each in its own process on one
    machine's cache, the second on a dataset whose statistics differ (every mean and spread,
    and its lowest note a little lower: as many harmonics reach Nyquist): the first compiles
    its step and saves it; the second loads it (nothing compiled, so nothing saved: XLA saves
    what it compiles, over an entry of the same key). The step reads the statistics; it does
    not hold them."""
    other = other_dataset(prepared[0], tmp_path / "other")
    env = {**os.environ, "NAS_CACHE_DIR": str(tmp_path / "cache")}  # a machine that compiled nothing yet
    settings = json.dumps({"steps": 2, "log_every": 1, "sample_every": 1000, "optim.batch_size": 4})
    saved = []
    for run, dataset_dir in (("first", prepared[0]), ("second", other)):
        done = subprocess.run([sys.executable, "-c", TRAIN, str(dataset_dir), str(tmp_path / run), settings],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "UNUSED []" in done.stdout  # ddsp.training's modules one by one, not its __init__'s all
        saved.append(_compiled_steps(tmp_path / "cache"))
    assert len(saved[0]) == 1  # the step: its batch's two halves have one shape
    assert saved[1] == saved[0]


def test_a_run_resumes_from_its_newest_checkpoint_written_whole(tmp_path):
    """A kill can fall between a checkpoint's files and TensorFlow's state file that names
    it, or within its files: the run resumes from the newest checkpoint that reads whole."""
    import tensorflow as tf

    from nas.training.loop import resume

    def fresh():
        return tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64))

    saved = fresh()
    manager = tf.train.CheckpointManager(saved, str(tmp_path), max_to_keep=3)
    for step in (10, 20, 30):
        saved.step.assign(step)
        manager.save(checkpoint_number=step)
    state = tmp_path / "checkpoint"
    state.write_text(state.read_text().replace("ckpt-30", "ckpt-20"))  # killed before the state file
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-20")
    assert resume(fresh(), tmp_path) == 30
    for shard in tmp_path.glob("ckpt-30.data-*"):  # killed while its data was written
        shard.unlink()
    assert resume(fresh(), tmp_path) == 20
    (tmp_path / "ckpt-20.index").write_bytes(b"\0" * 16)  # an index cut short
    assert resume(fresh(), tmp_path) == 10
    for index in tmp_path.glob("*.index"):
        index.unlink()
    assert resume(fresh(), tmp_path) == 0


@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint_and_learns(prepared, tmp_path):
    """SIGKILL mid-run, then the same command: it resumes from the latest checkpoint, the
    step count continues, and after a hundred steps the spectral loss is clearly lower. The
    resumed process loads the step the killed one compiled (its restore comes after the step's
    trace, which would otherwise name the step anew)."""
    dataset_dir = prepared[0]
    run_dir = tmp_path / "run"
    settings = {"checkpoint_every": 10, "log_every": 10, "sample_every": 40, "optim.batch_size": 4,
                "optim.learning_rate": 3e-3}
    env = {**os.environ, "NAS_CACHE_DIR": str(tmp_path / "cache")}  # a machine that compiled nothing yet
    first = subprocess.Popen([sys.executable, "-c", TRAIN, str(dataset_dir), str(run_dir),
                              json.dumps({**settings, "steps": 1000})], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (run_dir / "checkpoints" / "ckpt-20.index").exists():
        assert first.poll() is None and time.time() < deadline, "training did not reach step 20"
        time.sleep(0.5)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert not (run_dir / "model").exists()
    from nas.training.loop import complete_checkpoints

    killed_at = int(complete_checkpoints(run_dir / "checkpoints")[0].rsplit("-", 1)[1])  # 20, or later
    compiled = _compiled_steps(tmp_path / "cache")
    assert len(compiled) == 1

    steps = 100
    second = subprocess.run([sys.executable, "-c", TRAIN, str(dataset_dir), str(run_dir),
                             json.dumps({**settings, "steps": steps})], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"from its checkpoint at step {killed_at}" in second.stderr
    assert _compiled_steps(tmp_path / "cache") == compiled
    summary = _last_json(second.stdout, "SUMMARY")
    assert summary["step"] == steps
    assert json.loads((run_dir / "model" / "model.json").read_text())["step"] == steps

    rows = pq.read_table(run_dir / "metrics.parquet").to_pylist()
    train_steps = [r["step"] for r in rows if np.isfinite(r["loss"])]
    assert train_steps == list(range(10, steps + 1, 10))  # rows after the checkpoint were logged once
    final = summary["final"]
    assert final["eval_loss"] < 0.75 * final["initial_eval_loss"], final
    assert len(list((run_dir / "samples").glob("*.wav"))) >= 4 and (run_dir / "loss.png").exists()
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("model")) == ["model"]

    # The exported model loads on its own and scores what training reported (the filtered
    # noise is random, hence the tolerance).
    from nas.config.presets import LossConfig
    from nas.models.saved import load_model
    from nas.models.synthesizer import make_preprocessor, make_spectral_loss
    from nas.store.datasets import load_metadata
    from nas.training.data import eval_batches, examples
    from nas.training.loop import EVAL_BATCHES

    model, saved = load_model(run_dir / "model")
    assert saved.model_version == summary["model_version"] and model.decoder_parameters() == 2430
    metadata = load_metadata(dataset_dir)
    eval_set = examples(dataset_dir, "eval", metadata, make_preprocessor(model.config, 16000, 4.0))
    spectral_loss = make_spectral_loss(LossConfig())
    losses, sizes = zip(*[(float(spectral_loss(b["audio"], model(b)["audio_synth"])), len(b["audio"]))
                          for b in eval_batches(eval_set, metadata.counts.eval, 4, EVAL_BATCHES)])
    assert abs(np.average(losses, weights=sizes) - final["eval_loss"]) < 0.03 * final["eval_loss"]


def test_a_time_budget_ends_training_where_it_is_spent_and_a_larger_one_goes_on(prepared, tmp_path):
    """`minutes`: the loop stops once its wall time reaches the budget, far before `steps`,
    and saves the model there; the budget is not part of the run's id, so the same budget
    again reuses that model and a larger one resumes it, the loop's time adding up."""
    from nas.config.presets import train_config
    from nas.store.artifacts import WandbRecord
    from nas.store.runs import RunLayout
    from nas.training.loop import train
    from nas.training.metrics import MetricsLog
    from tasks.cards import model_card

    dataset_dir, layout = prepared[0], RunLayout(tmp_path / "run")
    settings = {"steps": 100_000, "log_every": 5, "checkpoint_every": 100_000, "sample_every": 100_000,
                "optim.batch_size": 4}
    budget = train_config("cnn-tiny", {**settings, "minutes": 0.1})
    assert budget.identity() == train_config("cnn-tiny", settings).identity()
    first = train(dataset_dir, layout, budget)
    # past the budget by at most a step; the first step compiles, which took 15 s on a loaded machine
    assert 0 < first.step < 100_000 and 6 <= first.trained_s < 60 and first.budget_minutes == 0.1
    assert layout.model.exists() and (layout.checkpoints / f"ckpt-{first.step}.index").exists()

    again = train(dataset_dir, layout, budget)
    assert again.model_version == first.model_version and again.trained_s == first.trained_s

    larger = round(first.trained_s / 60, 2) + 0.1  # 6 s more than the first part took, however long that was
    more = train(dataset_dir, layout, train_config("cnn-tiny", {**settings, "minutes": larger}))
    assert more.step > first.step and 60 * larger <= more.trained_s < 60 * larger + 60
    elapsed = MetricsLog(layout.metrics, more.step).logged("elapsed_s")
    assert elapsed == sorted(elapsed) and elapsed[-1] == more.trained_s  # resumed time adds to the first part's
    card = model_card(more, WandbRecord(), layout.loss_plot)
    assert (f"- steps: {more.step} in {more.trained_s / 60:.1f} minutes of training, under a budget of {larger:g} "
            "minutes") in card

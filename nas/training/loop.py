"""The training loop: a compiled step under a tf.distribute strategy, checkpoints and
resumption, metrics and samples reported through callbacks (nas knows no W&B)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from nas.atomic import replace_dir, staging_dir
from nas.config.presets import LossConfig, OptimConfig, TrainConfig
from nas.data.audio import write_wav
from nas.locations import is_remote, location
from nas.models.decoders import hold_input_stats_in_variables, input_stats
from nas.models.saved import WEIGHTS, write_weights
from nas.models.synthesizer import Synthesizer, make_preprocessor, make_spectral_loss
from nas.plots import plot_loss_curve, plot_spectrograms
from nas.progress import clock, progress
from nas.store.artifacts import DatasetMeta, DatasetStatistics, FinalLosses, RunSummary
from nas.store.cache import Checkpoints
from nas.store.datasets import load_metadata, load_statistics
from nas.store.names import MODEL_FILE
from nas.store.runs import RunLayout, finished_run, model_summary, model_version, write_run_config

from . import data
from .callbacks import Callback, Sample, TrainingStart
from .metrics import MetricsLog

log = logging.getLogger(__name__)

EVAL_BATCHES = 4  # eval loss on at most this many batches of the eval split


CPU_PARTS = 2  # XLA's CPU step keeps about 1.5 of 2 cores busy; two halves at once keep both


def default_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over several GPUs, otherwise the default (one device, a GPU if any)."""
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def batch_parts(batch_size: int, strategy: tf.distribute.Strategy) -> int:
    """Parts a replica's batch is split into, each part's loss and gradients computed at once:
    CPU_PARTS on a CPU (no GPU) with as many cores, where the batch splits evenly; else 1."""
    per_replica = batch_size // strategy.num_replicas_in_sync
    if tf.config.list_logical_devices("GPU") or len(os.sched_getaffinity(0)) < CPU_PARTS or per_replica % CPU_PARTS:
        return 1
    return CPU_PARTS


def learning_rate_schedule(optim: OptimConfig) -> tf.keras.optimizers.schedules.LearningRateSchedule:
    schedules = tf.keras.optimizers.schedules
    if optim.schedule == "cosine":
        return schedules.CosineDecay(0.0 if optim.warmup_steps else optim.learning_rate, optim.decay_steps,
                                     warmup_target=optim.learning_rate if optim.warmup_steps else None,
                                     warmup_steps=optim.warmup_steps)
    decay = schedules.ExponentialDecay(optim.learning_rate, decay_steps=optim.decay_steps, decay_rate=optim.decay_rate)
    return _Warmup(decay, optim.warmup_steps) if optim.warmup_steps else decay


class _Warmup(tf.keras.optimizers.schedules.LearningRateSchedule):
    """A linear ramp from 0 over the first `steps`, then `after`."""

    def __init__(self, after, steps: int):
        self.after, self.steps = after, steps

    def __call__(self, step):
        ramp = tf.minimum(1.0, tf.cast(step, tf.float32) / self.steps)
        return self.after(step) * ramp

    def get_config(self):
        return {"after": self.after.get_config(), "steps": self.steps}


class Trainer:
    """Model, optimiser and compiled step, built in a strategy's scope."""

    def __init__(self, config: TrainConfig, metadata: DatasetMeta, strategy: tf.distribute.Strategy | None = None,
                 statistics: DatasetStatistics | None = None):
        """statistics: the dataset's (statistics.json), which set the decoder's input scales."""
        self.config = config
        self.strategy = strategy or default_strategy()
        self.sample_rate = metadata.sample_rate
        self.example_secs = metadata.example_secs
        self.preprocessor = make_preprocessor(config.model, self.sample_rate, self.example_secs)
        self.loss_fn = make_spectral_loss(config.loss, self.sample_rate)  # the objective
        self.metric_fn = make_spectral_loss(LossConfig())  # ddsp's loss, what evaluation reports
        optim = config.optim
        if optim.batch_size % self.strategy.num_replicas_in_sync:
            raise ValueError(f"batch size {optim.batch_size} does not split over "
                             f"{self.strategy.num_replicas_in_sync} devices")
        with self.strategy.scope():
            # plain floats, kept here: Keras would wrap them as the model's attribute
            self.input_stats = input_stats(statistics) if statistics and config.model.standardize_inputs else None
            self.model = Synthesizer(config.model, self.sample_rate, self.example_secs, self.input_stats)
            hold_input_stats_in_variables(self.model.decoder)
            if statistics and hasattr(self.model.harmonic, "lowest_hz"):
                # Its lowest f0 (MIDI over the train split), a hair under for rounding: batches
                # that stay above it are synthesised without the harmonics that stay silent.
                self.model.harmonic.lowest_hz = 0.999 * 440.0 * 2.0 ** ((statistics.pitch.min - 69.0) / 12.0)
            self.model.build_variables()
            self.schedule = learning_rate_schedule(optim)
            self.optimizer = tf.keras.optimizers.Adam(self.schedule)
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.parts = batch_parts(optim.batch_size, self.strategy)
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, step=self.step)
        self._compute = tf.function(self._loss_and_grads, jit_compile=config.use_xla, autograph=False)
        self._forward = tf.function(self._loss_and_audio, autograph=False)

    def trace_step(self, examples: tf.data.Dataset) -> None:
        """Trace the compiled step for batches of `examples` now. Traced after a resumed run's
        restore, the step differs in XLA's key from a fresh run's and compiles again; traced
        before it, it loads the step that run compiled.
        Only on one device: each replica of several calls the step under its own device scope,
        which traces it again."""
        if not self.config.use_xla or self.strategy.num_replicas_in_sync > 1:
            return
        part = self.config.optim.batch_size // self.parts
        self._compute.get_concrete_function(
            {key: tf.TensorSpec([part, *spec.shape], spec.dtype) for key, spec in examples.element_spec.items()})

    def _loss_and_grads(self, batch: dict):
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            audio = self.model(batch, training=True)["audio_synth"]
            loss = self.loss_fn(batch["audio"], audio)
            share = loss / (self.strategy.num_replicas_in_sync * self.parts)  # all parts' gradients are summed
        return loss, tape.gradient(share, variables)

    def _replica_step(self, batch: dict):
        # The parts' compiled calls do not depend on each other, so TensorFlow runs them at once.
        parts = [self._compute({key: value[i::self.parts] for key, value in batch.items()})
                 for i in range(self.parts)]
        loss = tf.add_n([part_loss for part_loss, _ in parts]) / self.parts
        grads = [tf.add_n(part) for part in zip(*(part_grads for _, part_grads in parts))]
        # Sum the replicas' gradients first so clipping sees the whole batch's norm.
        grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
        grads, norm = tf.clip_by_global_norm(grads, self.config.optim.clip_norm)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables), skip_gradients_aggregation=True)
        return loss, norm

    @tf.function(autograph=False)
    def train_step(self, iterator):
        loss, norm = self.strategy.run(self._replica_step, args=(next(iterator),))
        mean = tf.distribute.ReduceOp.MEAN
        return self.strategy.reduce(mean, loss, axis=None), self.strategy.reduce(mean, norm, axis=None)

    def _loss_and_audio(self, batch: dict):
        audio = self.model(batch, training=False)["audio_synth"]
        return self.metric_fn(batch["audio"], audio), audio

    def evaluate(self, batches: tf.data.Dataset) -> float:
        losses, weights = [], []
        for batch in batches:
            loss, _ = self._forward(batch)
            losses.append(float(loss))
            weights.append(int(batch["audio"].shape[0]))
        return float(np.average(losses, weights=weights))

    def loss_and_audio(self, batch: dict) -> tuple[float, np.ndarray]:
        loss, audio = self._forward(batch)
        return float(loss), audio.numpy()

    def resynthesize(self, batch: dict) -> np.ndarray:
        return self.loss_and_audio(batch)[1]

    def learning_rate(self, step: int) -> float:
        return float(self.schedule(step))


def complete_checkpoints(folder: Path) -> list[str]:
    """The prefixes of the checkpoints in `folder` whose index and every data shard are on
    disk, newest first. TensorFlow writes a checkpoint's files before it names it in its
    `checkpoint` state file, so a run killed between the two has a newer complete
    checkpoint than that file says: the one it resumes from."""
    found = []
    for index in Path(folder).glob("ckpt-*.index"):
        prefix = index.name.removesuffix(".index")
        number = prefix.removeprefix("ckpt-")
        shards = list(Path(folder).glob(f"{prefix}.data-*-of-*"))
        if number.isdigit() and shards and len(shards) == int(shards[0].name.rsplit("-of-", 1)[1]):
            found.append((int(number), str(Path(folder) / prefix)))
    return [prefix for _, prefix in sorted(found, reverse=True)]


def resume(checkpoint: tf.train.Checkpoint, folder: Path) -> int:
    """Restore the newest checkpoint that reads whole; its step (0: none, a fresh start)."""
    for prefix in complete_checkpoints(folder):
        try:
            checkpoint.restore(prefix).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError) as error:  # cut short as it was written
            log.warning("checkpoint %s does not read whole (%s); trying the one before", prefix, type(error).__name__)
            continue
        return int(checkpoint.step)
    return 0


def train(dataset_dir: Path, layout: RunLayout, config: TrainConfig, callbacks: list[Callback] = (),
          strategy: tf.distribute.Strategy | None = None) -> RunSummary:
    """Train (or resume) the run in `layout` until `config.steps` or until its training loop
    has run `config.minutes` in all; returns the run summary."""
    dataset_dir = location(dataset_dir)
    metadata = load_metadata(dataset_dir)
    if metadata.counts.train < config.optim.batch_size:
        raise ValueError(f"{dataset_dir}: {metadata.counts.train} training examples, fewer than one "
                         f"batch of {config.optim.batch_size}")
    finished = finished_run(layout, config.steps, config.minutes)
    if finished:
        return finished
    tf.keras.utils.set_random_seed(config.seed)
    trainer = Trainer(config, metadata, strategy, load_statistics(dataset_dir))
    train_examples = data.examples(dataset_dir, "train", metadata, trainer.preprocessor)
    trainer.trace_step(train_examples)  # before the restore: see trace_step
    checkpoints = Checkpoints(layout.checkpoints)  # in a bucket: a local copy, uploaded after each save
    manager = tf.train.CheckpointManager(trainer.checkpoint, str(checkpoints.dir),
                                         max_to_keep=config.keep_checkpoints, step_counter=trainer.step)
    start = resume(trainer.checkpoint, checkpoints.dir)
    if start:
        log.info("resumed %s from its checkpoint at step %d", layout.dir.name, start)
    write_run_config(layout, dataset_dir, metadata, config, _software())
    metrics = MetricsLog(layout.metrics, start)

    eval_split = metadata.counts.evaluated
    eval_examples = data.examples(dataset_dir, eval_split, metadata, trainer.preprocessor)
    eval_set = data.eval_batches(eval_examples, metadata.counts.of(eval_split), config.optim.batch_size,
                                 EVAL_BATCHES)
    batches = data.training_batches(train_examples, config.optim.batch_size, config.seed, skip_batches=start)
    iterator = iter(trainer.strategy.experimental_distribute_dataset(batches))
    sample_batch = next(iter(eval_set))  # its first example is the listening sample

    begin = TrainingStart(
        run_id=layout.dir.name, run_dir=str(layout.dir), preset=config.preset,
        decoder_parameters=trainer.model.decoder_parameters(),
        parameters=int(sum(v.shape.num_elements() for v in trainer.model.trainable_variables)),
        dataset=metadata.name, dataset_version=metadata.version, start_step=start, steps=config.steps,
        devices=trainer.strategy.num_replicas_in_sync, config=config.model_dump(mode="json"))
    for callback in callbacks:
        callback.on_start(begin)
    log.info("training %s (%s, %d decoder parameters) on %s %s: steps %d -> %d, batch %d on %d device(s) in %d "
             "part(s) at once", begin.run_id, config.preset, begin.decoder_parameters, metadata.name, metadata.version,
             start, config.steps, config.optim.batch_size, begin.devices, trainer.parts)

    def report(step: int, row: dict) -> None:
        metrics.add(step, **row)
        for callback in callbacks:
            callback.on_metrics(step, row)

    def sample(step: int) -> None:
        report(step, {"eval_loss": trainer.evaluate(eval_set)})
        produced = _write_sample(layout, step, sample_batch, trainer.resynthesize(sample_batch),
                                 trainer.sample_rate)
        for callback in callbacks:
            callback.on_sample(produced)

    if start == 0:
        sample(0)
    budget_s = 60 * config.minutes if config.minutes else float("inf")
    logged = metrics.logged("elapsed_s")  # rows up to the checkpoint, when resumed
    before = logged[-1] if logged else 0.0  # the loop's time then (0 if no row was logged before it)
    t0 = time.perf_counter()
    window_start, window_losses, window_norms = t0, [], []
    step, spent = start, before >= budget_s
    while step < config.steps and not spent:
        loss, norm = trainer.train_step(iterator)
        step += 1
        window_losses.append(loss)
        window_norms.append(norm)
        spent = before + time.perf_counter() - t0 >= budget_s
        last = step == config.steps or spent
        if step % config.log_every == 0 or last:
            now = time.perf_counter()
            mean_loss = float(np.mean([float(x) for x in window_losses]))
            mean_norm = float(np.mean([float(x) for x in window_norms]))
            rate, elapsed = len(window_losses) / (now - window_start), before + now - t0
            lr = trainer.learning_rate(step)
            if not np.isfinite(mean_loss):
                raise FloatingPointError(f"{layout.dir.name}: loss is {mean_loss} at step {step}")
            report(step, {"loss": mean_loss, "grad_norm": mean_norm, "learning_rate": lr, "steps_per_s": rate,
                          "elapsed_s": elapsed})
            left = min((config.steps - step) / rate, budget_s - elapsed)
            log.info("step %d/%d  loss %.4f  grad norm %.3f  lr %.2e  %.2f steps/s  %s left", step, config.steps,
                     mean_loss, mean_norm, lr, rate, clock(left),
                     extra=progress("training", step, config.steps, f"{step}/{config.steps}  loss {mean_loss:.3f}"
                                    f"  {rate:.2f} steps/s  {clock(left)} left"))
            window_start, window_losses, window_norms = time.perf_counter(), [], []
        if step % config.sample_every == 0 and not last:
            sample(step)
        if step % config.checkpoint_every == 0 or last:
            metrics.write()  # first: a resumed run keeps the rows up to its checkpoint, so they must be on disk
            trainer.step.assign(step)
            manager.save(checkpoint_number=step)
            checkpoints.push()
    if spent:
        log.info("%s: the budget of %g minutes is spent at step %d", layout.dir.name, config.minutes, step)
    sample(step)
    metrics.write()
    plot_loss_curve(metrics.rows, layout.loss_plot, title=f"{metadata.name} · {config.preset}",
                    log_floor=config.loss.log_floor)
    summary = save_model(trainer, layout, metadata, config, metrics, step)
    for callback in callbacks:
        callback.on_end(summary)
    return summary


def _write_sample(layout: RunLayout, step: int, batch: dict, synthesized: np.ndarray, sample_rate: int) -> Sample:
    original = batch["audio"].numpy()[0]
    synthesized = synthesized[0]
    folder = layout.samples
    if not is_remote(folder):
        folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"step-{step:07d}-{kind}" for kind in ("original.wav", "resynthesis.wav", "spectrogram.png")]
    for path, audio in zip(paths[:2], (original, synthesized)):
        write_wav(path, audio, sample_rate)
    plot_spectrograms(original, synthesized, sample_rate, paths[2], title=f"step {step}")
    return Sample(step, sample_rate, original, synthesized, *paths)


def save_model(trainer: Trainer, layout: RunLayout, metadata: DatasetMeta, config: TrainConfig, metrics: MetricsLog,
               step: int) -> RunSummary:
    """The trained model as weights + model.json in `model/`, swapped in whole."""
    summary = RunSummary(
        run_id=layout.dir.name, run_dir=str(layout.dir), model_version=model_version(layout.dir.name, step),
        step=step, preset=config.preset, recipe=config.recipe, optim=config.optim, loss=config.loss,
        decoder_parameters=trainer.model.decoder_parameters(), dataset=metadata.ref,
        sample_rate=metadata.sample_rate, example_secs=metadata.example_secs, model=config.model,
        input_stats=trainer.input_stats, seed=config.seed, trained_s=metrics.last("elapsed_s"),
        budget_minutes=config.minutes, final=FinalLosses(loss=metrics.last("loss"), eval_loss=metrics.last("eval_loss"),
                          initial_eval_loss=metrics.first("eval_loss")),
        files={"weights": f"{layout.model.name}/{WEIGHTS}", "metrics": layout.metrics.name,
               "loss_plot": layout.loss_plot.name},
    )
    staging = staging_dir(layout.model)
    write_weights(trainer.model, staging)
    summary.save(model_summary(staging))
    replace_dir(staging, layout.model, commit=MODEL_FILE)
    summary.save(layout.summary)
    return summary


def _software() -> dict:
    from nas import __version__, ddsp_api

    return {"nas": __version__, "tensorflow": tf.__version__, "ddsp": ddsp_api.ddsp().__version__}

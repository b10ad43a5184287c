"""One training step of a preset, today's code side by side with an earlier commit's, and
where the step's time goes.

    .venv/bin/python benchmarks/train_step.py --dataset nas-data/demo-violin/<version> [--baseline 376a220] [--repeats 5]

Each side runs in a process of its own (the baseline's `nas/` taken from git, the same
installed libraries), builds the trainer on the same records and batch, and times the
whole step (forward, loss, gradients, clipping, Adam) when asked: the two take turns, so
the machine's load falls on both alike. Medians of the repeats are reported, of the wall
time and of the process's CPU time, since the sides may keep a different number of cores
busy. Timing starts after a pass over the train split, which fills the input pipeline's
cache (its first pass preprocesses on the same cores). Each side
also times its parts, each forward and backward under XLA: the decoder alone, then adding
the harmonic synth, the filtered noise, the reverb, and the spectral loss on fixed audio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BASELINE = "376a220"  # main before the issue "thesis quality in an hour"


def worker(dataset_dir: Path, preset: str, batch_size: int) -> None:
    """Build the trainer, then answer `step N` and `parts N` on stdin with a JSON line."""
    import tensorflow as tf

    from nas.config.presets import train_config
    from nas.store.datasets import load_metadata, load_statistics
    from nas.training import data
    from nas.training.loop import Trainer

    metadata = load_metadata(dataset_dir)
    tf.keras.utils.set_random_seed(0)
    trainer = Trainer(train_config(preset, {"optim.batch_size": batch_size}), metadata,
                      statistics=load_statistics(dataset_dir))
    examples = data.examples(dataset_dir, "train", metadata, trainer.preprocessor)
    batches = data.training_batches(examples, batch_size, seed=0)
    iterator = iter(trainer.strategy.experimental_distribute_dataset(batches))
    batch = next(iter(batches))
    parts = _parts(trainer, batch)

    def step():
        return float(trainer.train_step(iterator)[0])

    def timed(fn, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n * 1000

    def timed_step(n: int) -> dict:
        cpu = time.process_time()
        ms = timed(step, n)
        return {"ms": ms, "cpu_ms": (time.process_time() - cpu) / n * 1000}

    # compile, and fill the input pipeline's cache: its first pass preprocesses every example
    # on the same cores, which is not what a step costs through the rest of a run
    for _ in range(-(-metadata.counts.of("train") // batch_size) + 2):
        step()
    for fn in parts.values():
        fn()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command, n = line.split()
        if command == "step":
            print(json.dumps(timed_step(int(n))), flush=True)
        else:
            print(json.dumps({name: timed(fn, int(n)) for name, fn in parts.items()}), flush=True)
    os._exit(0)  # at once: tf.data's prefetch threads can hold the interpreter's exit


def _parts(trainer, batch: dict) -> dict:
    """Forward and backward of growing prefixes of the model, each compiled with XLA."""
    import tensorflow as tf

    model, variables = trainer.model, trainer.model.trainable_variables
    fixed_audio = tf.Variable(batch["audio"] * 0.5)

    def prefix(parts: str):
        def objective():
            controls = model.decoder(batch)
            audio = 0.0
            if "h" in parts:
                audio += model.harmonic(controls["amps"], controls["harmonic_distribution"], batch["f0_hz"])
            if "n" in parts:
                audio += model.noise(controls["noise_magnitudes"])
            if "r" in parts:
                audio = model.reverb(audio)
            if "l" in parts:
                return trainer.loss_fn(batch["audio"], audio)
            return tf.reduce_mean(tf.abs(audio)) if parts else tf.reduce_mean(controls["amps"])
        return objective

    def compiled(objective, wrt):
        def grads():
            with tf.GradientTape() as tape:
                value = objective()
            return [g for g in tape.gradient(value, wrt) if g is not None]
        fn = tf.function(grads, jit_compile=True, autograph=False)
        return lambda: [g.numpy() for g in fn()]

    return {
        "decoder": compiled(prefix(""), variables),
        "+ harmonic": compiled(prefix("h"), variables),
        "+ noise": compiled(prefix("hn"), variables),
        "+ reverb": compiled(prefix("hnr"), variables),
        "+ loss (the step's model)": compiled(prefix("hnrl"), variables),
        "loss alone, on fixed audio": compiled(lambda: trainer.loss_fn(batch["audio"], fixed_audio), [fixed_audio]),
    }


def _baseline_tree(ref: str, into: Path) -> Path:
    """`nas/` as it was at `ref`, extracted into the folder `into`."""
    archive = subprocess.run(["git", "archive", ref, "nas"], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


class _Side:
    """A worker process; its libraries' console output goes to `log`, shown if it fails."""

    def __init__(self, name: str, path: Path, args, log: Path):
        self.name, self.log = name, log
        command = [sys.executable, __file__, "--worker", "--dataset", str(args.dataset), "--preset", args.preset,
                   "--batch", str(args.batch)]
        env = {**os.environ, "PYTHONPATH": str(path), "TF_CPP_MIN_LOG_LEVEL": "3"}
        with open(log, "w") as stderr:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                            text=True, env=env, cwd=path)

    def ask(self, line: str | None = None) -> dict:
        if line:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the {self.name} side ended (exit {self.process.wait()}):\n"
                               f"{self.log.read_text()[-3000:]}")
        return json.loads(answer)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, type=Path, help="a published dataset folder")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="the git commit to compare with")
    parser.add_argument("--preset", default="cnn-tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps timed per repeat")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.dataset, args.preset, args.batch)
    args.dataset = args.dataset.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        sides = []
        for name, path in ((f"baseline {args.baseline}", _baseline_tree(args.baseline, Path(tmp) / "baseline")),
                           ("today", REPO)):
            print(f"building {name} ...", flush=True)
            sides.append(_Side(name, path, args, Path(tmp) / f"{len(sides)}.log"))
            sides[-1].ask()  # one at a time: each compiles on both cores
        step_ms = {side.name: [] for side in sides}
        cpu_ms = {side.name: [] for side in sides}
        part_ms = {side.name: [] for side in sides}
        for repeat in range(args.repeats):
            for side in sides:
                timing = side.ask(f"step {args.steps}")
                step_ms[side.name].append(timing["ms"])
                cpu_ms[side.name].append(timing["cpu_ms"])
                part_ms[side.name].append(side.ask("parts 3"))
            print(f"repeat {repeat + 1}/{args.repeats}: " + ", ".join(
                f"{name} {values[-1]:.0f} ms" for name, values in step_ms.items()), flush=True)
        for side in sides:
            side.close()
    baseline, today = (statistics.median(step_ms[side.name]) for side in sides)
    results = {"preset": args.preset, "batch": args.batch, "repeats": args.repeats, "steps_per_repeat": args.steps,
               "baseline": args.baseline, "speedup": baseline / today, "rows": [
                   {"code": side.name, "ms_per_step": statistics.median(step_ms[side.name]),
                    "steps_per_s": 1000 / statistics.median(step_ms[side.name]),
                    "cpu_ms_per_step": statistics.median(cpu_ms[side.name]),
                    "all_ms": [round(v, 1) for v in step_ms[side.name]]} for side in sides],
               "parts": [{"part": part, **{side.name: statistics.median(r[part] for r in part_ms[side.name])
                                           for side in sides}} for part in part_ms[sides[0].name][0]]}
    print("\n| code | ms/step | steps/s | CPU ms/step |\n|---|---|---|---|")
    for row in results["rows"]:
        print(f"| {row['code']} | {row['ms_per_step']:.0f} | {row['steps_per_s']:.2f} | {row['cpu_ms_per_step']:.0f} |")
    print(f"speedup {results['speedup']:.2f}x\n")
    print("| part (forward + backward) | " + " | ".join(side.name for side in sides) + " |")
    print("|---|" + "---|" * len(sides))
    for row in results["parts"]:
        print(f"| {row['part']} | " + " | ".join(f"{row[side.name]:.0f} ms" for side in sides) + " |")
    from record import save

    save("train_step", results)


if __name__ == "__main__":
    main()

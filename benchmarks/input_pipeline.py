"""The input pipeline alone (issue 39): examples a second from a prepared dataset's records
through the same tf.data pipeline training uses (ddsp's reader, the model's preprocessor
once per example, the in-memory cache, shuffle, batches, prefetch), with no model.

    .venv/bin/python benchmarks/input_pipeline.py --dataset nas-data/demo-violin/<version> [--repeats 3]

Each core count runs in a process of its own (TensorFlow's thread pools are fixed at
start): 1 and 2 cores. Two phases: the first pass over the split (records read and
preprocessed), and the cached steady state (what every later epoch costs). Medians of
`--repeats`, beside what a step needs: the CPU's (batch 8 at the steps/s of today's code in
`train_step.py`'s latest results) and a GPU's (an H100 step of 2-18 ms at batch 8: 450 to
4,000 examples a second, ../shared/DESIGN.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from record import load_data, save

REPO = Path(__file__).resolve().parents[1]
GPU_NEED = (450, 4000)  # examples a second an H100's step would take at batch 8, fused to unfused


def measure(dataset_dir: Path, cores: int, preset: str, batch: int, seconds: float) -> dict:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(cores)
    from nas.config.presets import train_config
    from nas.models.synthesizer import make_preprocessor
    from nas.store.datasets import load_metadata
    from nas.training import data

    metadata = load_metadata(dataset_dir)
    config = train_config(preset)
    preprocessor = make_preprocessor(config.model, metadata.sample_rate, metadata.example_secs)
    examples = data.examples(dataset_dir, "train", metadata, preprocessor)
    options = tf.data.Options()
    options.threading.private_threadpool_size = cores
    examples = examples.with_options(options)
    start = time.perf_counter()
    first = sum(1 for _ in examples)  # reads and preprocesses every record, filling the cache
    first_pass = first / (time.perf_counter() - start)
    batches = iter(data.training_batches(examples, batch, seed=0))
    next(batches)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(batches)
        count += batch
    return {"cores": cores, "examples": first, "first_pass": first_pass,
            "cached": count / (time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, type=Path, help="a published dataset folder")
    parser.add_argument("--preset", default="cnn-tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="of the cached phase")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, help=argparse.SUPPRESS)  # one measurement, in this process
    args = parser.parse_args()
    if args.cores:
        print(json.dumps(measure(args.dataset, args.cores, args.preset, args.batch, args.seconds)))
        return
    step = load_data("train_step")  # the CPU step's need, from today's code
    if step.get("preset") != args.preset or step.get("batch") != args.batch:
        sys.exit(f"train_step.py's latest results are for {step.get('preset')} at batch {step.get('batch')}: "
                 f"run it for {args.preset} at batch {args.batch} first")
    cpu_steps = next(r["steps_per_s"] for r in step["rows"] if r["code"] == "today")
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for repeat in range(args.repeats):  # interleaved: a busy spell slows both alike
        for cores in runs:
            done = subprocess.run([sys.executable, __file__, "--dataset", str(args.dataset), "--cores", str(cores),
                                   "--preset", args.preset, "--batch", str(args.batch), "--seconds", str(args.seconds)],
                                  capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            if done.returncode:
                sys.exit(done.stderr[-3000:])
            runs[cores].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"repeat {repeat + 1}, {cores} core(s): {runs[cores][-1]}", flush=True)
    rows = [{"cores": cores, "examples": found[0]["examples"],
             "first_pass": statistics.median(r["first_pass"] for r in found),
             "cached": statistics.median(r["cached"] for r in found)} for cores, found in runs.items()]
    result = {"measured": time.strftime("%Y-%m-%d"), "dataset": str(args.dataset), "preset": args.preset,
              "batch": args.batch, "repeats": args.repeats, "cpu_step_need": cpu_steps * args.batch,
              "gpu_need": list(GPU_NEED), "rows": rows}
    save("input_pipeline", result)
    print("| cores | first pass (examples/s) | cached (examples/s) | CPU step needs | a GPU needs |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['cores']} | {row['first_pass']:,.0f} | {row['cached']:,.0f} | {cpu_steps * args.batch:.0f} "
              f"| {GPU_NEED[0]:,}-{GPU_NEED[1]:,} |")


if __name__ == "__main__":
    main()

"""A new dataset's first training step on a machine whose XLA cache holds another dataset's
step of the same settings, this tree against a reference commit.

    .venv/bin/python benchmarks/compiled_step.py --dataset nas-data/demo-violin/<version> [--repeats 3]

The other dataset is a copy of `--dataset` whose statistics differ (every mean and spread
3% more, the lowest note 0.05 semitone lower), as another recording of the instrument's
would. Each round, for each tree in turn, on a cache of its own that starts empty: a fresh
process trains one step of cnn-tiny (batch 4) on the dataset, compiling it; then a fresh
process does the same on the other dataset. Each reports the CPU seconds of its first step
(tracing, then compiling or loading the compiled step) and of the process. Medians.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from prepare_vs_ddsp import reference_tree  # noqa: E402
from record import save  # noqa: E402

# Run in the tree under test (its directory first on the path): the first step's CPU seconds.
CHILD = """
import json, os, sys
from pathlib import Path
os.environ["NAS_CACHE_DIR"] = sys.argv[2]
def cpu():
    times = os.times()
    return times.user + times.system
import tensorflow as tf
from nas.config.presets import train_config
from nas.store.datasets import load_metadata, load_statistics
from nas.training import data
from nas.training.loop import Trainer
dataset = Path(sys.argv[1])
metadata = load_metadata(dataset)
tf.keras.utils.set_random_seed(0)
trainer = Trainer(train_config("cnn-tiny", {"optim.batch_size": 4}), metadata, statistics=load_statistics(dataset))
examples = data.examples(dataset, "train", metadata, trainer.preprocessor)
iterator = iter(trainer.strategy.experimental_distribute_dataset(data.training_batches(examples, 4, seed=0)))
started = cpu()
float(trainer.train_step(iterator)[0])
first = cpu() - started
print(json.dumps({"first_step_cpu_s": first, "process_cpu_s": cpu(),
                  "compiled": len(list(Path(sys.argv[2]).rglob("*.pb")))}))
"""


def other_dataset(dataset: Path, into: Path) -> Path:
    """A copy of `dataset` with its statistics moved: every mean and spread 3% more, the lowest
    note 0.05 semitone lower."""
    other = Path(shutil.copytree(dataset, into / dataset.name))
    moved = json.loads((other / "statistics.json").read_text())
    for key, value in list(moved.items()):
        if key.startswith(("mean_", "std_")) and isinstance(value, float):
            moved[key] = value * 1.03
    moved["min_pitch"] -= 0.05
    (other / "statistics.json").write_text(json.dumps(moved))
    return other


def first_step(tree: Path, dataset: Path, cache: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(dataset), str(cache)], cwd=tree, capture_output=True,
                          text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"{tree}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a prepared dataset version's folder")
    parser.add_argument("--reference", default="52f6e8d", help="the git commit to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dataset = args.dataset.resolve()
    sides = ("this tree", f"@{args.reference}")
    runs = {side: {"its own dataset, empty cache": [], "another dataset, its step cached": []} for side in sides}
    with tempfile.TemporaryDirectory(prefix="nas-compiled-step-") as work, \
            reference_tree(args.reference, Path(work) / "reference") as reference:
        other = other_dataset(dataset, Path(work) / "other")
        for repeat in range(args.repeats):
            for side, tree in zip(sides, (REPO, reference)):
                cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
                for case, data in zip(runs[side], (dataset, other)):
                    result = first_step(tree, data, cache)
                    runs[side][case].append(result)
                    print(f"round {repeat + 1}/{args.repeats}, {side}, {case}: first step "
                          f"{result['first_step_cpu_s']:.1f} s of CPU, {result['compiled']} step(s) in the cache",
                          flush=True)
    rows = []
    for side in sides:
        for case, results in runs[side].items():
            rows.append({"tree": side, "case": case,
                         "first_step_cpu_s": statistics.median(r["first_step_cpu_s"] for r in results),
                         "process_cpu_s": statistics.median(r["process_cpu_s"] for r in results),
                         "steps_in_cache": max(r["compiled"] for r in results),
                         "repeats": [round(r["first_step_cpu_s"], 1) for r in results]})
    ours, theirs = (rows[i]["first_step_cpu_s"] for i in (1, 3))
    save("compiled_step", {"reference": args.reference, "dataset": dataset.name, "rows": rows,
                           "another_dataset_ratio": ours / theirs})
    for row in rows:
        print(f"{row['tree']:>12}  {row['case']:<32}  first step {row['first_step_cpu_s']:5.1f} s of CPU  "
              f"process {row['process_cpu_s']:5.1f} s")
    print(f"another dataset's first step: {ours / theirs:.2f}x the reference's CPU")


if __name__ == "__main__":
    main()

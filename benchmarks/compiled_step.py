"""The first training step of a process on a machine whose XLA cache holds a step of the same
settings, compiled by another process: for another dataset, and for the same run resumed;
this tree against a reference commit.

    .venv/bin/python benchmarks/compiled_step.py --dataset nas-data/demo-violin/<version> [--repeats 3]

The other dataset is a copy of `--dataset` whose statistics differ (every mean and spread
3% more, the lowest note 0.05 semitone lower), as another recording of the instrument's
would. Each round, for each tree in turn, on a cache of its own that starts empty, three
fresh processes run `nas.training.loop.train` (cnn-tiny, batch 4): two steps on the dataset,
compiling the step; two steps on the other dataset; the first run resumed from its
checkpoint to four steps. Each reports the CPU seconds of its first step (tracing, then
compiling or loading the compiled step) and of the whole process, and how many steps the
cache then holds. Medians.
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

# Run in the tree under test (its directory first on the path): train, timing the first step
# from the loop's last event before it (its start, or a fresh run's step-0 sample).
CHILD = """
import json, os, sys
from pathlib import Path
os.environ["NAS_CACHE_DIR"] = sys.argv[3]
from nas.config.presets import train_config
from nas.store.runs import RunLayout
from nas.training.callbacks import Callback
from nas.training.loop import train


def cpu():
    times = os.times()
    return times.user + times.system


class FirstStep(Callback):
    def __init__(self):
        self.before, self.first = None, None

    def on_start(self, start):
        self.before = cpu()

    def on_sample(self, sample):
        self.before = cpu()

    def on_metrics(self, step, metrics):
        if self.first is None and "loss" in metrics:
            self.first = cpu() - self.before


timer = FirstStep()
settings = {"steps": int(sys.argv[4]), "log_every": 1, "sample_every": 1000, "optim.batch_size": 4}
train(Path(sys.argv[1]), RunLayout(Path(sys.argv[2])), train_config("cnn-tiny", settings), [timer])
print(json.dumps({"first_step_cpu_s": timer.first, "process_cpu_s": cpu(),
                  "compiled": len(list(Path(sys.argv[3]).rglob("*.pb")))}))
"""
CASES = ("its own dataset, empty cache", "another dataset", "the first run resumed")


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


def first_step(tree: Path, dataset: Path, run: Path, cache: Path, steps: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(dataset), str(run), str(cache), str(steps)], cwd=tree,
                          capture_output=True, text=True, timeout=900)
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
    runs = {side: {case: [] for case in CASES} for side in sides}
    with tempfile.TemporaryDirectory(prefix="nas-compiled-step-") as work, \
            reference_tree(args.reference, Path(work) / "reference") as reference:
        other = other_dataset(dataset, Path(work) / "other")
        for repeat in range(args.repeats):
            for side, tree in zip(sides, (REPO, reference)):
                folder = Path(tempfile.mkdtemp(prefix="round-", dir=work))
                for case, data, run, steps in zip(CASES, (dataset, other, dataset), ("first", "other", "first"),
                                                  (2, 2, 4)):
                    result = first_step(tree, data, folder / run, folder / "cache", steps)
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
    # the processes': this tree traces its step before the first one (Trainer.trace_step)
    ratios = {case: rows[i]["process_cpu_s"] / rows[i + len(CASES)]["process_cpu_s"] for i, case in enumerate(CASES)}
    save("compiled_step", {"reference": args.reference, "dataset": dataset.name, "rows": rows,
                           "process_cpu_ratio": ratios})
    for row in rows:
        print(f"{row['tree']:>12}  {row['case']:<30}  first step {row['first_step_cpu_s']:5.1f} s of CPU  "
              f"process {row['process_cpu_s']:5.1f} s")
    for case, ratio in ratios.items():
        print(f"{case}: the process takes {ratio:.2f}x the reference's CPU")


if __name__ == "__main__":
    main()

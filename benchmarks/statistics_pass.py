"""The statistics stage's own work, without its imports: this tree against a reference commit.

    .venv/bin/python benchmarks/statistics_pass.py --dataset nas-data/demo-violin/<version> \
        [--reference a132346] [--repeats 5]

Each side runs in a fresh process started in its own tree (a git worktree for the
reference, its bytecode compiled): it imports ddsp and the statistics module first, then
times `compute_statistics` on the dataset's train split, `--repeats` times, and checks its
statistics against those the dataset was published with. The sides alternate; medians.
Results: benchmarks/results/statistics_pass.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from prepare_vs_ddsp import alternating
from record import save

CHILD = """
import json, pickle, sys, time
from pathlib import Path
from nas import ddsp_api
from nas.data.statistics import compute_statistics
from nas.store.datasets import load_metadata
assert Path(sys.argv[2]).resolve() in Path(__import__("nas").__file__).resolve().parents, "wrong nas imported"
ddsp_api.postprocessing(), ddsp_api.spectral_ops()
dataset = Path(sys.argv[1])
start = time.perf_counter()
stats = compute_statistics(dataset, load_metadata(dataset))
seconds = time.perf_counter() - start
with open(dataset / "dataset_statistics.pkl", "rb") as f:
    published = pickle.load(f)
worst = max(abs(float(stats[k]) - float(published[k])) / max(1.0, abs(float(published[k])))
            for k in stats if k != "quantile_transform")
print(json.dumps({"seconds": seconds, "max_rel_difference": worst}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--reference", default="a132346", help="commit of the code before (ddsp's reader)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    dataset = args.dataset.resolve()
    examples = json.loads((dataset / "dataset.json").read_text())["counts"]["train"]
    runs = alternating(args.reference, args.repeats, CHILD, dataset, describe=lambda r: f"{r['seconds']:.2f} s")
    median = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    result = {"date": time.strftime("%Y-%m-%d"), "dataset": str(dataset), "train_examples": examples,
              "reference": args.reference, "runs": runs, "median_seconds": median,
              "ms_per_example": {k: 1000 * v / examples for k, v in median.items()}}
    save("statistics_pass", result)
    for name, seconds in median.items():
        print(f"{name}: median {seconds:.2f} s ({1000 * seconds / examples:.1f} ms per train example)")


if __name__ == "__main__":
    main()

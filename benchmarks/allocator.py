"""A short training with many samples, as a sweep's point trains: this tree, whose processes
keep the memory they free (nas/allocator.py: glibc's malloc settings and TensorFlow's pooled
CPU buffers), against a reference commit.

    .venv/bin/python benchmarks/allocator.py --dataset nas-data/demo-violin/<version> \
        [--reference f609ccf] [--repeats 3]

Each side runs in a fresh process started in its own tree (a git worktree for the
reference), with an XLA cache of its own, so that each compiles its step. It trains
cnn-tiny for 20 steps at batch 4 with an eval loss and an audio sample every 2 steps, and
reports the process's user and system CPU seconds, its page faults and its peak memory.
The sides alternate; medians. Results: benchmarks/results/allocator.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prepare_vs_ddsp import alternating, medians
from record import save

CHILD = """
import json, os, resource, sys, tempfile
from pathlib import Path
cache = tempfile.TemporaryDirectory(prefix="nas-xla-")  # removed as the process ends
os.environ["NAS_CACHE_DIR"] = cache.name
import nas
assert Path(sys.argv[2]).resolve() in Path(nas.__file__).resolve().parents, "wrong nas imported"
from nas.config.presets import train_config
from nas.store.datasets import load_metadata
from nas.store.runs import run_layout
from nas.training.loop import train
dataset = Path(sys.argv[1])
config = train_config("cnn-tiny", {"steps": 20, "log_every": 10, "sample_every": 2, "optim.batch_size": 4})
with tempfile.TemporaryDirectory() as root:
    before, faults = os.times(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    train(dataset, run_layout(Path(root), load_metadata(dataset), config), config)
    after, usage = os.times(), resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"user_s": after.user - before.user, "system_s": after.system - before.system,
                  "page_faults": usage.ru_minflt - faults, "peak_rss_gb": usage.ru_maxrss / 1e6}))
"""
FIGURES = ("user_s", "system_s", "page_faults", "peak_rss_gb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True, help="a prepared dataset's folder")
    parser.add_argument("--reference", default="f609ccf",
                        help="commit of the code before (f609ccf: glibc's and TensorFlow's defaults; fb0fbd4: glibc's "
                             "settings, TensorFlow's default allocator)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = alternating(args.reference, args.repeats, CHILD, args.dataset.resolve(),
                       describe=lambda r: f"{r['user_s']:.1f} s user, {r['system_s']:.1f} s system, "
                                          f"{r['page_faults']} page faults, {r['peak_rss_gb']:.2f} GB peak")
    median = medians(runs, FIGURES)
    ours, theirs = median["this tree"], median[f"@{args.reference}"]
    cpu = {name: m["user_s"] + m["system_s"] for name, m in median.items()}
    result = {"date": time.strftime("%Y-%m-%d"), "dataset": str(args.dataset), "reference": args.reference,
              "median": median, "ratio": {k: ours[k] / theirs[k] for k in FIGURES},
              "cpu_ratio": cpu["this tree"] / cpu[f"@{args.reference}"], "runs": runs}
    save("allocator", result)
    for figure in FIGURES:
        print(f"{figure}: {ours[figure]:.2f} here, {theirs[figure]:.2f} at {args.reference} "
              f"({ours[figure] / theirs[figure]:.2f}x)")
    print(f"CPU (user + system): {result['cpu_ratio']:.2f}x")


if __name__ == "__main__":
    main()

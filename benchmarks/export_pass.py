"""An export and its runtimes' losses, without the imports: this tree against a reference commit.

    .venv/bin/python benchmarks/export_pass.py --run nas-data/demo-violin/runs/<run> \
        [--reference 2453fe3] [--repeats 3]

Each side runs in a fresh process started in its own tree (a git worktree for the
reference, its bytecode compiled). It exports the run's model once untimed (imports, the
converters' first use), then times, in CPU seconds of the process, `export_model` and
`measure` of every runtime with its spectral loss on the parity examples (0.3 s of timing
rounds each, as the suite's sweep asks). The sides alternate; medians. Both sides' figures
are kept: the export's differences and losses, and each runtime's loss, should agree.
Results: benchmarks/results/export_pass.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prepare_vs_ddsp import alternating, medians
from record import save

CHILD = """
import json, sys, tempfile, time
from pathlib import Path
from nas.export.bundle import PARITY_EXAMPLES, examples, export_model, spectral_loss
from nas.export.runtimes import measure
from nas.store.datasets import load_metadata
from nas.store.runs import RunLayout, load_model_summary
assert Path(sys.argv[2]).resolve() in Path(__import__("nas").__file__).resolve().parents, "wrong nas imported"
run = RunLayout(Path(sys.argv[1]))
summary = load_model_summary(run.model)
dataset = Path(json.loads((run.dir / "config.json").read_text())["dataset"]["dir"])
with tempfile.TemporaryDirectory() as out:
    export_model(run.model, dataset, Path(out) / "warm")
    start = time.process_time()
    report = export_model(run.model, dataset, Path(out) / "export")
    export_s = time.process_time() - start
    metadata = load_metadata(dataset)
    parity = examples(dataset, metadata.counts.evaluated, metadata, summary.model, PARITY_EXAMPLES)
    start = time.process_time()
    runtimes = measure(Path(out) / "export", summary.model_version, parity, budget_s=0.3, spectral_loss=spectral_loss)
    measure_s = time.process_time() - start
print(json.dumps({"export_cpu_s": export_s, "measure_cpu_s": measure_s,
                  "export": report.model_dump(mode="json", include={"max_abs_difference", "spectral_loss"}),
                  "runtime_losses": {f.runtime: f.spectral_loss for f in runtimes.runtimes}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a trained run's folder")
    parser.add_argument("--reference", default="2453fe3", help="commit of the code before (one model call a parity "
                                                               "example, one loss call a rendered example)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = alternating(args.reference, args.repeats, CHILD, args.run.resolve(),
                       describe=lambda r: f"export {r['export_cpu_s']:.2f} s, runtimes {r['measure_cpu_s']:.2f} s of CPU")
    median = medians(runs, ("export_cpu_s", "measure_cpu_s"))
    ours, theirs = median["this tree"], median[f"@{args.reference}"]
    result = {"date": time.strftime("%Y-%m-%d"), "run": str(args.run), "reference": args.reference,
              "median_cpu_s": median, "cpu_ratio": {k: ours[k] / theirs[k] for k in ours},
              "figures": {name: {"export": results[-1]["export"], "runtime_losses": results[-1]["runtime_losses"]}
                          for name, results in runs.items()},
              "runs": {name: [{k: r[k] for k in ("export_cpu_s", "measure_cpu_s")} for r in results]
                       for name, results in runs.items()}}
    save("export_pass", result)
    for figure in ("export_cpu_s", "measure_cpu_s"):
        print(f"{figure}: {ours[figure]:.2f} s here, {theirs[figure]:.2f} s at {args.reference} "
              f"({ours[figure] / theirs[figure]:.2f}x)")


if __name__ == "__main__":
    main()

"""A fully cached re-run of the demo: `nas run dataset_configs/demo-violin.yaml` when the
dataset, model, evaluation and export are already on disk (run `make demo` first).

    .venv/bin/python benchmarks/cached_rerun.py [--runs 5] [--data-root nas-data]

Wall time of the whole command (a new process each time, as a user types it), side by
side in interleaved rounds:
- with a Prefect server already running (started here, as `prefect server start`),
- with no server set, so `nas run` uses the local server that nas commands share (started
  by the first of these runs, outside the timing, and stopped at the end),
- the floor: a process that only imports the pipeline (Python, TensorFlow, Prefect),
- with `--reference COMMIT`, the first two again with that commit's code (a git worktree,
  its bytecode compiled as `make install` compiles ours), in the same rounds.
Medians are reported; the goal is at most 3 s with a running server and 8 s with none set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from prepare_vs_ddsp import reference_tree  # noqa: E402
from record import save  # noqa: E402

from flows.cli.local_server import local_server, stop_shared_server  # noqa: E402
from nas.constants import DEFAULT_DATA_ROOT  # noqa: E402

CONFIG = "dataset_configs/demo-violin.yaml"
GOALS = {"running server": 3.0, "no server set": 8.0}
BIN = REPO / ".venv" / "bin"


def timed(args: list[str], env: dict, cwd: Path = REPO) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    parser.add_argument("--reference", help="a commit whose code is timed beside this one")
    parser.add_argument("--out", default="cached_rerun", help="results file name in benchmarks/results/")
    args = parser.parse_args()
    root = REPO / args.data_root
    if not list((root / "demo-violin" / "runs").glob("*/export/export.json")):
        sys.exit(f"{root}: no exported demo model; run `make demo` first")
    run = [str(BIN / "nas"), "run", CONFIG, "--data-root", str(root)]
    bare = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    times: dict[str, list[float]] = {"running server": [], "no server set": [], "imports only": []}
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as other, \
            tempfile.TemporaryDirectory() as work, ExitStack() as stack, local_server(Path(home)) as server:
        tree = stack.enter_context(reference_tree(args.reference, Path(work) / "tree")) if args.reference else None
        # started in the worktree, so its `flows` and `nas` come first on the path
        reference_run = [str(BIN / "python"), "-m", "flows.cli", *run[1:]]
        if tree:
            times.update({f"running server @{args.reference}": [], f"no server set @{args.reference}": []})
        unset = {**bare, "PREFECT_HOME": other}
        timed(run, server.env)  # the first run on a new server registers flows and tasks
        timed(run, unset)  # starts nas's shared local server
        for i in range(args.runs):
            times["running server"].append(timed(run, server.env))
            times["no server set"].append(timed(run, unset))
            times["imports only"].append(timed([str(BIN / "python"), "-c", "import flows.pipeline"], bare))
            if tree:
                times[f"running server @{args.reference}"].append(timed(reference_run, server.env, tree))
                times[f"no server set @{args.reference}"].append(timed(reference_run, unset, tree))
            print(f"round {i + 1}/{args.runs}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()),
                  flush=True)
        stop_shared_server(Path(other))
    medians = {k: statistics.median(v) for k, v in times.items()}
    result = {"date": time.strftime("%Y-%m-%d"), "runs": args.runs, "reference": args.reference, "seconds": times,
              "median_seconds": medians,
              "goal_seconds": GOALS, "goal_met": all(medians[k] <= v for k, v in GOALS.items())}
    save(args.out, result)
    for k, v in medians.items():
        print(f"{k:>17}: median {v:.1f} s")
    print(f"goal (running server <= 3 s, none set <= 8 s): {'met' if result['goal_met'] else 'NOT met'}")


if __name__ == "__main__":
    main()

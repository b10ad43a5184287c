"""What a sweep costs over running its points' pipelines by hand: a 4-point sweep of a few
steps each against the same four `nas run` commands one after another.

    .venv/bin/python benchmarks/sweep_overhead.py [--steps 100] [--rounds 2] [--data-root nas-data]

Every variant starts from a fresh data root holding only the prepared demo violin (copied
from `--data-root`; run `make demo` or `nas prepare` first), so each trains, evaluates and
exports all four points; the sweep also times its runtimes (`--runtimes nas-engine`, 1 s a
point, the least it does). Variants, alternated in rounds, medians of wall-clock:
- `sequential`: four `nas run` commands, one per point;
- `sweep, 1 worker`: `nas sweep --dask-workers 1`;
- `sweep, 2 workers`: `nas sweep --dask-workers 2` (two points train at once; a tiny
  model's training step does not keep both cores busy).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from record import save

from nas.constants import DEFAULT_DATA_ROOT

REPO = Path(__file__).resolve().parents[1]
CONFIG = "dataset_configs/demo-violin.yaml"
NAS = str(REPO / ".venv/bin/nas")
POINTS = [("cnn-tiny", 0), ("cnn-tiny", 1), ("rnn-tiny", 0), ("rnn-tiny", 1)]


def _fresh_root(source: Path) -> Path:
    root = Path(tempfile.mkdtemp(prefix="nas-sweep-overhead-"))
    for version in (source / "demo-violin").glob("*/dataset.json"):
        shutil.copytree(version.parent, root / "demo-violin" / version.parent.name)
    return root


def _timed(commands: list[list[str]]) -> float:
    start = time.perf_counter()
    for command in commands:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def variants(steps: int) -> dict:
    common = ["--recipe", "fast", "--steps", str(steps)]
    sweep = [NAS, "sweep", CONFIG, "--preset", "cnn-tiny,rnn-tiny", "--seeds", "2", *common,
             "--runtimes", "nas-engine", "--runtime-seconds", "1"]
    return {
        "sequential": lambda root: [[NAS, "run", CONFIG, "--data-root", str(root), "--preset", preset, *common,
                                     "--set", f"seed={seed}", "--set", f"sample_every={max(1, steps // 10)}"]
                                    for preset, seed in POINTS],  # the eval cadence a sweep's point has
        "sweep, 1 worker": lambda root: [[*sweep, "--data-root", str(root), "--dask-workers", "1"]],
        "sweep, 2 workers": lambda root: [[*sweep, "--data-root", str(root), "--dask-workers", "2"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-root", type=Path, default=REPO / DEFAULT_DATA_ROOT)
    args = parser.parse_args()
    if not list((args.data_root / "demo-violin").glob("*/dataset.json")):
        raise SystemExit(f"{args.data_root}: no prepared demo-violin (run `make demo` first)")
    runs = variants(args.steps)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(args.rounds):
        order = list(runs) if round_ % 2 == 0 else list(reversed(runs))
        for name in order:
            root = _fresh_root(args.data_root)
            try:
                times[name].append(_timed(runs[name](root)))
            finally:
                shutil.rmtree(root, ignore_errors=True)
            print(f"round {round_ + 1}: {name}: {times[name][-1]:.0f} s", flush=True)
    base = statistics.median(times["sequential"])
    rows = [{"variant": name, "runs_s": [round(t, 1) for t in v], "median_s": statistics.median(v),
             "vs_sequential": statistics.median(v) / base} for name, v in times.items()]
    for row in rows:
        print(f"{row['variant']:18s} median {row['median_s']:6.0f} s  {row['vs_sequential']:.2f}x the sequential time")
    save("sweep_overhead", {"steps": args.steps, "points": POINTS, "rows": rows})


if __name__ == "__main__":
    main()

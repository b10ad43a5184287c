"""The CPU of a process's first W&B run, opened where nas opens it: `nas run` on two demo files
(tiny CREPE, 20 training steps, W&B offline), whose dataset upload opens the first run inside
a flow's task, this tree against a reference commit (default a2e575a: wandb.init imports
wandb's launch package itself, in the task's stack).

    .venv/bin/python benchmarks/wandb_first_run.py [--reference a2e575a] [--repeats 3]

Each side runs the command in a fresh process started in its own tree (a git worktree for
the reference), `tasks.wandb.open_run` timed; one local Prefect server serves both. It
reports the first run's opening and the whole command, CPU seconds (user + system). The
sides alternate; medians. Results: benchmarks/results/wandb_first_run.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml
from prepare_vs_ddsp import AUDIO, REPO, alternating, medians
from record import save

sys.path.insert(0, str(REPO))
from flows.cli.local_server import stop_shared_server  # noqa: E402

CHILD = """
import importlib, json, os, sys, tempfile, time
from pathlib import Path
config, tree = sys.argv[1], Path(sys.argv[2])
import tasks.wandb
assert tree.resolve() in Path(tasks.wandb.__file__).resolve().parents, "wrong tree imported"
opened, open_run = [], tasks.wandb.open_run


def timed(*args, **kwargs):
    started = time.process_time()
    try:
        return open_run(*args, **kwargs)
    finally:
        opened.append(time.process_time() - started)


for name in ("tasks.wandb", "tasks.wandb_upload", "tasks.wandb_training", "tasks.evaluate"):
    module = importlib.import_module(name)  # each took open_run by name as it was imported
    module.open_run = timed
from flows.cli.main import main

with tempfile.TemporaryDirectory() as root:
    started = time.process_time()
    code = main(["run", config, "--data-root", root, "--steps", "20", "--set", "optim.batch_size=4"])
    spent = time.process_time() - started
assert code == 0, code
print(json.dumps({"first_run_s": opened[0], "runs": len(opened), "command_s": spent}), flush=True)
os._exit(0)  # measured; an exit that waits on Prefect's queues would only add time
"""
FIGURES = ("first_run_s", "command_s")


def config(folder: Path) -> Path:
    """The demo violin's config on its first two files, as the tests' configs are small."""
    demo = yaml.safe_load((REPO / "dataset_configs" / "demo-violin.yaml").read_text())
    demo.update(name="wandb-first-run", audio=[str(a) for a in AUDIO[:2]], crepe={"capacity": "tiny", "viterbi": True},
                beam={"direct_running_mode": "in_memory"}, wandb={"project": "nas-benchmarks", "mode": "offline"},
                training={"preset": "cnn-tiny"})
    path = folder / "wandb-first-run.yaml"
    path.write_text(yaml.safe_dump(demo))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default="a2e575a", help="commit of the code before")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nas-wandb-first-run-") as folder:
        home = Path(folder) / "prefect"
        os.environ.update(PREFECT_HOME=str(home), NAS_CACHE_DIR=str(Path(folder) / "cache"))
        try:
            runs = alternating(args.reference, args.repeats, CHILD, config(Path(folder)),
                               describe=lambda r: f"first W&B run {r['first_run_s']:.2f} s of CPU, "
                                                  f"the command {r['command_s']:.1f} s")
        finally:
            stop_shared_server(home)
    median = medians(runs, FIGURES)
    ours, theirs = median["this tree"], median[f"@{args.reference}"]
    ratio = {figure: ours[figure] / theirs[figure] for figure in FIGURES}
    save("wandb_first_run", {"reference": args.reference, "repeats": args.repeats, "median": median,
                             **{f"{figure} ratio": r for figure, r in ratio.items()}, "runs": runs})
    for figure in FIGURES:
        print(f"{figure}: {ratio[figure]:.2f}x ({ours[figure]:.2f} s against {theirs[figure]:.2f} s)")


if __name__ == "__main__":
    main()

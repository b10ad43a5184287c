"""Quality against training time: ddsp's spectral loss, the f0 error and the loudness error
on the eval split after 5, 15 and 60 minutes of training on this machine, per dataset config
and preset, as a table and a plot (docs/time-to-quality.png).

    .venv/bin/python benchmarks/time_to_quality.py dataset_configs/demo-violin.yaml [more configs]
        [--presets cnn-tiny cnn] [--minutes 5 15 60] [--steps cnn=14500] [--data-root nas-data]

Each config and preset is one run, trained with `nas train --minutes` to the first budget
and resumed to each next one (the budget is not part of a run), and scored after each by
`nas evaluate`. So the points are one long run's prefix. The recipe is `fast` (warm-up to
3e-3) with its cosine over --steps, about the steps the last budget reaches here (each
preset's own, STEPS): a cosine tied to each budget would make every point a run of its own
and the curve three times the compute. The rate has not decayed at the early points, so a
run planned for 5 minutes (its own cosine, as `make demo`'s 750 steps) ends lower there
than this curve's 5-minute point.

The results file keeps the curves of other configs and presets from earlier runs: one
60-minute run at a time is what fits beside other work, and each row says when and on what
machine it was measured.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from record import load_data, machine, save

REPO = Path(__file__).resolve().parents[1]
NAS = [sys.executable, "-m", "flows.cli"]
SCORES = re.compile(r"of (?P<version>\S+): spectral loss (?P<spectral_loss>[\d.]+), f0 (?P<f0_mae_cents>[\d.]+) "
                    r"cents \(RPA (?P<rpa>[\d.]+)\), loudness (?P<loudness_mae_db>[\d.]+) dB")
PLOT = REPO / "docs" / "time-to-quality.png"
# About what 60 minutes reach on 2 cores since the faster step (cnn-tiny 7-8 steps a second,
# cnn 4); other presets name theirs with --steps.
STEPS = {"cnn-tiny": 24000, "cnn": 14500}


def nas(*args: str) -> str:
    done = subprocess.run([*NAS, *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")})
    if done.returncode:
        raise RuntimeError(f"nas {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def curve(config: str, preset: str, budgets: list[float], steps: int, data_root: str) -> list[dict]:
    from nas.store.runs import load_model_summary

    settings = ["--preset", preset, "--recipe", "fast", "--steps", str(steps), "--data-root", data_root]
    rows = []
    for minutes in budgets:
        started = time.perf_counter()
        trained = nas("train", config, *settings, "--minutes", str(minutes))
        model_dir = re.search(r"^model \S+: (.+/model)$", trained, re.MULTILINE).group(1)
        summary = load_model_summary(Path(model_dir))
        scores = SCORES.search(nas("evaluate", config, "--model-version", summary.model_version,
                                   "--data-root", data_root)).groupdict()
        rows.append({"config": Path(config).stem, "preset": preset, "minutes": minutes, "step": summary.step,
                     "cosine_steps": steps, "trained_minutes": round(summary.trained_s / 60, 2),
                     "model_version": scores.pop("version"), **{k: float(v) for k, v in scores.items()},
                     "measured": date.today().isoformat(), "cpu": machine().split(",")[0]})
        print(f"{rows[-1]['config']} {preset} {minutes:g} min: step {summary.step}, "
              f"{', '.join(f'{k} {rows[-1][k]}' for k in ('spectral_loss', 'f0_mae_cents', 'rpa', 'loudness_mae_db'))}"
              f" ({(time.perf_counter() - started) / 60:.1f} min with evaluation)", flush=True)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = (("spectral_loss", "spectral loss (ddsp's)"), ("f0_mae_cents", "f0 error (cents)"),
               ("loudness_mae_db", "loudness error (dB)"))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for key in sorted({(r["config"], r["preset"]) for r in rows}):
        points = [r for r in rows if (r["config"], r["preset"]) == key]
        for ax, (figure, _) in zip(axes, figures):
            ax.plot([p["trained_minutes"] for p in points], [p[figure] for p in points], "o-",
                    label=f"{' · '.join(key)} ({points[0]['measured']})")
    budgets = sorted({r["minutes"] for r in rows})
    for ax, (_, label) in zip(axes, figures):
        ax.set_xscale("log")
        ax.set_xticks(budgets, [f"{m:g}" for m in budgets])
        ax.minorticks_off()
        ax.set_xlabel("minutes of training (2 cores)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--presets", nargs="+", default=["cnn-tiny"])
    parser.add_argument("--minutes", nargs="+", type=float, default=[5, 15, 60])
    parser.add_argument("--steps", nargs="+", default=[], metavar="PRESET=N",
                        help=f"a preset's cosine length, about what the last budget reaches (default: {STEPS})")
    parser.add_argument("--data-root", default="nas-data")
    args = parser.parse_args()
    steps = {**STEPS, **{p: int(n) for p, n in (item.split("=", 1) for item in args.steps)}}
    if missing := set(args.presets) - steps.keys():
        parser.error(f"--steps: no cosine length for {', '.join(sorted(missing))}: give it as --steps PRESET=N")
    rows = [row for config in args.configs for preset in args.presets
            for row in curve(config, preset, sorted(args.minutes), steps[preset], args.data_root)]
    measured = {(r["config"], r["preset"]) for r in rows}
    kept = [r for r in load_data("time_to_quality").get("rows", []) if (r["config"], r["preset"]) not in measured]
    rows = kept + rows
    plot(rows, PLOT)
    save("time_to_quality", {"recipe": "fast, cosine over each row's cosine_steps", "rows": rows,
                             "plot": str(PLOT.relative_to(REPO))})


if __name__ == "__main__":
    main()

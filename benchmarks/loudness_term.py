"""The training loss's loudness term (`loss.loudness_weight`) against none: ddsp's spectral
loss, the f0 error and the loudness error on the eval split, per config, weight and seed,
with the median over seeds.

    .venv/bin/python benchmarks/loudness_term.py dataset_configs/demo-violin.yaml [more configs]
        [--weights 0 0.1] [--seeds 0 1 2] [--steps 1120] [--data-root nas-data]

Each run is `nas train` with the `fast` recipe and its cosine planned for 1,300 steps
(`optim.decay_steps=1100` after the warm-up), stopped at --steps: 1,120 is what a 5-minute
budget reaches on 2 idle cores (the issue's demo goal), so runs are compared at equal steps
whatever else the machine runs. A weight of 0 is the loss without the term, whose runs keep
the ids they had before it existed: runs already trained are reused, and a model already
evaluated is read back rather than evaluated again (the evaluation is seeded). The rows of
configs not given keep their earlier figures, so instruments can be run one at a time.
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

from record import load_data, save
from time_to_quality import SCORES, nas

FIGURES = ("spectral_loss", "f0_mae_cents", "rpa", "loudness_mae_db")


def scores(config: str, model_dir: Path, data_root: str) -> dict:
    from nas.store.artifacts import Evaluation
    from nas.store.runs import load_model_summary

    version = load_model_summary(model_dir).model_version
    done = [e for e in map(Evaluation.load, sorted(model_dir.parent.glob("evaluations/*/metrics.json")))
            if e.model_version == version]
    if done:
        return {"model_version": version, **{k: round(getattr(done[-1].metrics, k), 4) for k in FIGURES}}
    found = SCORES.search(nas("evaluate", config, "--model-version", version, "--data-root", data_root)).groupdict()
    return {"model_version": found.pop("version"), **{k: float(v) for k, v in found.items()}}


def run(config: str, weight: float, seed: int, steps: int, data_root: str) -> dict:
    settings = ["--recipe", "fast", "--steps", str(steps), "--set", "optim.decay_steps=1100", "--set", f"seed={seed}",
                "--data-root", data_root]
    if weight:
        settings += ["--set", f"loss.loudness_weight={weight}"]
    trained = nas("train", config, *settings)
    model_dir = Path(re.search(r"^model \S+: (.+/model)$", trained, re.MULTILINE).group(1))
    row = {"config": Path(config).stem, "loudness_weight": weight, "seed": seed,
           **scores(config, model_dir, data_root)}
    print(" ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--weights", nargs="+", type=float, default=[0.0, 0.1])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1120)
    parser.add_argument("--data-root", default="nas-data")
    args = parser.parse_args()
    rows = [run(config, weight, seed, args.steps, args.data_root)
            for config in args.configs for weight in args.weights for seed in args.seeds]
    ran = {r["config"] for r in rows}  # an earlier run's rows of other configs stay
    rows = [r for r in load_data("loudness_term").get("rows", []) if r["config"] not in ran] + rows
    weights = sorted({r["loudness_weight"] for r in rows})
    medians = [{"config": config, "loudness_weight": weight, "seeds": len(group),
                **{k: statistics.median(r[k] for r in group) for k in FIGURES}}
               for config in dict.fromkeys(r["config"] for r in rows) for weight in weights
               if (group := [r for r in rows if (r["config"], r["loudness_weight"]) == (config, weight)])]
    save("loudness_term", {"steps": args.steps, "medians": medians, "rows": rows})


if __name__ == "__main__":
    main()

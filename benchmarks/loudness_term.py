"""The training loss's loudness term (`loss.loudness_weight`) against none: ddsp's spectral
loss, the f0 error and the loudness error on the eval split, per config, weight and seed,
with the median over seeds.

    .venv/bin/python benchmarks/loudness_term.py dataset_configs/demo-violin.yaml [more configs]
        [--weights 0 0.1] [--seeds 0 1 2] [--steps 1120] [--cosine 1300]
        [--set optim.batch_size=4] [--data-root nas-data]

Each run is `nas train` with the `fast` recipe and its cosine planned for --cosine steps
(warm-up included), stopped at --steps, so runs are compared at equal steps whatever else
the machine runs. A 5-minute budget on 2 idle cores reached 1,120 of a 1,300-step cosine
before the faster training step, and 1,800 of 1,800 since at batch 8; the demo trains
7,200 of batch 2 (`--steps 7200 --cosine 7200 --set optim.batch_size=2`). A weight of 0
is the loss without the term, whose runs keep the ids they had before it existed: runs
already trained are reused, and a model already evaluated is read back rather than
evaluated again (the evaluation is seeded). The rows of other configs, weights, step
counts and seeds keep their earlier figures, so instruments and weights can be run one at
a time. `--set` adds training settings to every run (a batch size, a peak learning rate);
they are part of a row's key, so each setting is its own row.
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

from record import load_data, save
from time_to_quality import SCORES, nas

FIGURES = ("spectral_loss", "f0_mae_cents", "rpa", "loudness_mae_db")
GROUP = ("config", "settings", "steps", "cosine_steps", "loudness_weight")  # a median's rows: these, all seeds


def run_key(row: dict) -> tuple:
    return tuple(row[k] for k in (*GROUP, "seed"))


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


def run(config: str, weight: float, seed: int, steps: int, cosine: int, data_root: str, settings: list[str]) -> dict:
    from nas.config.presets import RECIPES

    warmup = RECIPES["fast"]["optim.warmup_steps"]  # the cosine follows it
    flags = ["--recipe", "fast", "--steps", str(steps), "--set", f"optim.decay_steps={cosine - warmup}",
             "--set", f"seed={seed}", "--set", f"loss.loudness_weight={weight}",  # 0 too: a config may set one
             "--minutes", "600",  # no budget that binds (a config may set one): runs stop at --steps
             "--data-root", data_root, *[f for s in settings for f in ("--set", s)]]
    trained = nas("train", config, *flags)
    model_dir = Path(re.search(r"^model \S+: (.+/model)$", trained, re.MULTILINE).group(1))
    row = {"config": Path(config).stem, "settings": " ".join(settings), "steps": steps, "cosine_steps": cosine,
           "loudness_weight": weight, "seed": seed, **scores(config, model_dir, data_root)}
    print(" ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--weights", nargs="+", type=float, default=[0.0, 0.1])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1120)
    parser.add_argument("--cosine", type=int, default=1300, help="the steps the cosine is planned for")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a training setting for every run, e.g. optim.batch_size=4")
    parser.add_argument("--data-root", default="nas-data")
    args = parser.parse_args()
    rows = [run(config, weight, seed, args.steps, args.cosine, args.data_root, args.settings)
            for config in args.configs for weight in args.weights for seed in args.seeds]
    ran = set(map(run_key, rows))  # an earlier run's rows of other configs, weights, steps or seeds stay
    earlier = [{"settings": "", **r} for r in load_data("loudness_term").get("rows", [])]  # rows before --set
    rows = sorted([r for r in earlier if run_key(r) not in ran] + rows, key=run_key)
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in GROUP), []).append(r)
    medians = [{**dict(zip(GROUP, key)), "seeds": len(group),
                **{k: statistics.median(r[k] for r in group) for k in FIGURES}} for key, group in groups.items()]
    save("loudness_term", {"medians": medians, "rows": rows})


if __name__ == "__main__":
    main()

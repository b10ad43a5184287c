"""A sweep's points (preset x recipe x overrides x seed) and what is made of their results:
the summary rows, the quality-speed frontier, the seed spread and the report.

A point's row holds its settings, its scores (`nas evaluate`'s), its training time and each
runtime's figures (`nas.export.runtimes`) as columns `decoder_rtf.<runtime>`,
`path_rtf.<runtime>` and `loss_change_pct.<runtime>`.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict

from nas.store.artifacts import Frozen

SCORES = ("spectral_loss", "f0_mae_cents", "rpa", "loudness_mae_db")
EVALUATIONS_PER_CURVE = 10  # eval-loss points of each learning curve


class Point(Frozen):
    preset: str
    recipe: str
    steps: int
    seed: int
    overrides: dict = {}

    @property
    def label(self) -> str:
        return "/".join([self.preset, self.recipe, *(f"{k}={v}" for k, v in sorted(self.overrides.items())),
                         f"seed {self.seed}"])

    @property
    def group(self) -> str:
        """The point without its seed: what the seeds of one setting share."""
        return self.label.rsplit("/", 1)[0]

    def training(self) -> dict:
        """Settings over the config's training section. The eval loss is logged about
        EVALUATIONS_PER_CURVE times (the cadence is not part of a run's identity)."""
        every = max(1, self.steps // EVALUATIONS_PER_CURVE)
        return {"preset": self.preset, "recipe": self.recipe, "steps": self.steps, "seed": self.seed,
                "sample_every": every, **self.overrides}


def grid(presets: list[str], recipes: list[str], steps: int, seeds: int, overrides: dict[str, list]) -> list[Point]:
    """Every combination, seeds 0 .. seeds-1."""
    keys = sorted(overrides)
    return [Point(preset=preset, recipe=recipe, steps=steps, seed=seed, overrides=dict(zip(keys, values)))
            for preset, recipe, values, seed in itertools.product(
                presets, recipes, itertools.product(*(overrides[k] for k in keys)), range(seeds))]


def config_points(training, presets: list[str] | None, recipes: list[str] | None, steps: int | None, seeds: int,
                  overrides: dict[str, list] | None) -> list[Point]:
    """The grid of a sweep, with the config's training section (`training`) for what is not given."""
    return grid(presets or [training.preset], recipes or [training.recipe], steps or training.steps, seeds,
                overrides or {})


def training_time(metrics: list[dict]) -> tuple[float, list[tuple[int, float, float]]]:
    """(seconds of training, [(step, seconds so far, eval loss)]) from a run's metrics rows:
    each logged row covers the steps since the one before at its steps/s."""
    steps, seconds, clock = [0], [0.0], 0.0
    for row in metrics:
        if _number(row.get("steps_per_s")) and row["steps_per_s"] > 0:
            clock += (row["step"] - steps[-1]) / row["steps_per_s"]
            steps.append(row["step"])
            seconds.append(clock)
    curve = []
    for row in metrics:
        if _number(row.get("eval_loss")):
            # the latest clock at or before the evaluation's step
            at = max(s for s, step in zip(seconds, steps) if step <= row["step"])
            curve.append((row["step"], at, row["eval_loss"]))
    return clock, curve


def runtime_columns(report) -> dict:
    columns = {}
    for figures in report.runtimes:
        columns[f"decoder_rtf.{figures.runtime}"] = figures.decoder_rtf
        columns[f"path_rtf.{figures.runtime}"] = figures.path_rtf
        columns[f"loss_change_pct.{figures.runtime}"] = figures.loss_change_pct
    return columns


def runtimes_of(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(k.split(".", 1)[1] for row in rows for k in row if k.startswith("path_rtf.")))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def frontier_points(rows: list[dict]) -> list[dict]:
    """Every (point, runtime) with a score and a whole-path real-time factor. A runtime's
    spectral loss is the evaluation's times its change on the parity examples (the cost of
    int8; about nothing for the float runtimes)."""
    points = []
    for row in rows:
        for runtime in runtimes_of([row]):
            rtf, change = row.get(f"path_rtf.{runtime}"), row.get(f"loss_change_pct.{runtime}")
            if _number(rtf) and _number(row.get("spectral_loss")):
                loss = row["spectral_loss"] * (1 + (change if _number(change) else 0.0) / 100)
                points.append({"label": row["label"], "preset": row["preset"], "runtime": runtime, "rtf": rtf,
                               "spectral_loss": loss})
    return points


SAME_LOSS = 1e-4  # relative: float runtimes of one model differ by about 1e-6, which is no better


def pareto(points: list[dict]) -> list[dict]:
    """The points no other is both faster and better than, fastest first: the best quality
    to be had at each real-time factor."""
    front, best = [], math.inf
    for point in sorted(points, key=lambda p: (-p["rtf"], p["spectral_loss"])):
        if point["spectral_loss"] < best * (1 - SAME_LOSS):
            front.append(point)
            best = point["spectral_loss"]
    return front


def seed_spread(rows: list[dict]) -> tuple[list[dict], list[tuple[str, str, float, float]]]:
    """With two or more seeds per setting: each setting's mean and standard deviation of
    the scores, and the pairs of settings whose spectral losses differ by less than the
    larger of their seed spreads (differences the seeds alone could make)."""
    groups = defaultdict(list)
    for row in rows:
        if _number(row.get("spectral_loss")):
            groups[row["group"]].append(row)
    spread = []
    for group, members in groups.items():
        if len(members) < 2:
            continue
        entry = {"group": group, "seeds": len(members)}
        for score in SCORES:
            values = [m[score] for m in members]
            entry[f"{score}_mean"], entry[f"{score}_std"] = statistics.mean(values), statistics.stdev(values)
        spread.append(entry)
    close = []
    for a, b in itertools.combinations(spread, 2):
        difference = abs(a["spectral_loss_mean"] - b["spectral_loss_mean"])
        noise = max(a["spectral_loss_std"], b["spectral_loss_std"])
        if difference < noise:
            close.append((a["group"], b["group"], difference, noise))
    return spread, close


def report(name: str, dataset: str, rows: list[dict], frontier_png: str, curves_png: str) -> str:
    """The sweep's report (Markdown): the table, the front, the seed spread, the failures."""
    runtimes = runtimes_of(rows)
    done = [r for r in rows if r["status"] == "done"]
    lines = [f"# Sweep `{name}` on `{dataset}`", "",
             f"{len(done)} of {len(rows)} points done. Real-time factors: one thread, batch 1, 4 s of the dataset's "
             "controls; the whole path is each runtime's decoder and the engine's synthesis.", "",
             "| point | decoder parameters | spectral loss | f0 cents (RPA) | loudness dB | training s | steps/s | "
             + " | ".join(f"{r} x (int8 loss)" if "int8" in r else f"{r} x" for r in runtimes) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(runtimes)]
    for row in done:
        cells = []
        for runtime in runtimes:
            rtf = row.get(f"path_rtf.{runtime}")
            change = row.get(f"loss_change_pct.{runtime}")
            cells.append("-" if not _number(rtf) else f"{rtf:,.0f}" + (f" ({change:+.1f}%)" if "int8" in runtime
                                                                       and _number(change) else ""))
        lines.append(f"| {row['label']} | {row['decoder_parameters']:,} | {row['spectral_loss']:.3f} | "
                     f"{row['f0_mae_cents']:.1f} ({row['rpa']:.3f}) | {row['loudness_mae_db']:.2f} | "
                     f"{row['training_s']:.0f} | {row['steps_per_s']:.2f} | " + " | ".join(cells) + " |")
    front = pareto(frontier_points(done))
    lines += ["", "## Best at each real-time factor", "",
              "The Pareto front, fastest first: each is the best quality to be had at its speed or faster (a "
              "runtime's spectral loss: the evaluation's, times its change on the parity examples).", ""]
    lines += [f"- {p['rtf']:,.0f}x real time: **{p['label']}** on {p['runtime']}, spectral loss "
              f"{p['spectral_loss']:.3f}" for p in front] or ["- no point has both scores and runtimes"]
    spread, close = seed_spread(done)
    if spread:
        lines += ["", "## Seeds", "", "| setting | seeds | spectral loss | f0 cents | loudness dB |", "|---|---|---|---|---|"]
        lines += [f"| {s['group']} | {s['seeds']} | {s['spectral_loss_mean']:.3f} ± {s['spectral_loss_std']:.3f} | "
                  f"{s['f0_mae_cents_mean']:.1f} ± {s['f0_mae_cents_std']:.1f} | "
                  f"{s['loudness_mae_db_mean']:.2f} ± {s['loudness_mae_db_std']:.2f} |" for s in spread]
        lines += ["", "Spectral-loss differences smaller than the seed spread (not to be read as real):", ""]
        lines += [f"- {a} vs {b}: {d:.3f} apart, seed spread {n:.3f}" for a, b, d, n in close] or ["- none"]
    failed = [r for r in rows if r["status"] != "done"]
    if failed:
        lines += ["", "## Failed points", ""] + [f"- {r['label']}: {r['status']}" for r in failed]
    lines += ["", "## Quality and speed", "", f"![frontier]({frontier_png})", "", "## Learning curves", "",
              f"![learning curves]({curves_png})"]
    return "\n".join(lines) + "\n"

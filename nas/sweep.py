"""A sweep's points (preset x recipe x overrides x seed) and what is made of their results:
the summary rows, the quality-speed frontier, the seed spread and the report.

A point's result (`PointResult`) holds its settings, its scores (`nas evaluate`'s), its
training time and each runtime's figures (`nas.export.runtimes`).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict

from nas.store.artifacts import Frozen, MetricsRow, RuntimeFigures, Scores

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


def training_time(metrics: list[MetricsRow]) -> tuple[float, list[tuple[int, float, float]]]:
    """(seconds of training, [(step, seconds so far, eval loss)]) from a run's metrics rows:
    each logged row covers the steps since the one before at its steps/s."""
    steps, seconds, clock = [0], [0.0], 0.0
    for row in metrics:
        if _number(row.steps_per_s) and row.steps_per_s > 0:
            clock += (row.step - steps[-1]) / row.steps_per_s
            steps.append(row.step)
            seconds.append(clock)
    curve = []
    for row in metrics:
        if _number(row.eval_loss):
            # the latest clock at or before the evaluation's step
            at = max(s for s, step in zip(seconds, steps) if step <= row.step)
            curve.append((row.step, at, row.eval_loss))
    return clock, curve


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


class PointResult(Frozen):
    """A point's line of the sweep: its settings, and once done, its model, scores, training
    time and each runtime's figures (`nas.export.runtimes`)."""

    point: Point
    status: str = "done"  # or "failed: <why>"
    run_dir: str | None = None
    model_version: str | None = None
    decoder_parameters: int | None = None
    scores: Scores | None = None
    training_s: float | None = None
    steps_per_s: float | None = None
    runtimes: list[RuntimeFigures] = []

    @property
    def done(self) -> bool:
        return self.status == "done"

    def runtime(self, name: str) -> RuntimeFigures | None:
        return next((f for f in self.runtimes if f.runtime == name), None)

    def summary_row(self) -> dict:
        """Its row of `summary.parquet` (the runtimes go to their own long table)."""
        scores = self.scores.model_dump(include=set(SCORES)) if self.scores else dict.fromkeys(SCORES)
        return {"label": self.point.label, "group": self.point.group,
                **self.point.model_dump(exclude={"overrides"}),
                **{f"set.{k}": str(v) for k, v in self.point.overrides.items()},
                **self.model_dump(include={"status", "run_dir", "model_version", "decoder_parameters"}),
                **scores, **self.model_dump(include={"training_s", "steps_per_s"})}

    def runtime_rows(self) -> list[dict]:
        """Its rows of `runtimes.parquet`: one per runtime."""
        return [{"label": self.point.label, **f.model_dump()} for f in self.runtimes]


def runtimes_of(results: list[PointResult]) -> list[str]:
    return list(dict.fromkeys(f.runtime for r in results for f in r.runtimes))


class FrontierPoint(Frozen):
    """A (point, runtime) on the quality-speed plane."""

    label: str
    preset: str
    runtime: str
    rtf: float
    spectral_loss: float


def frontier_points(results: list[PointResult]) -> list[FrontierPoint]:
    """Every (point, runtime) with a score and a whole-path real-time factor. A runtime's
    spectral loss is the evaluation's times its change on the parity examples (the cost of
    int8; about nothing for the float runtimes)."""
    points = []
    for r in results:
        for f in r.runtimes:
            if r.scores and _number(r.scores.spectral_loss) and _number(f.path_rtf):
                change = f.loss_change_pct if _number(f.loss_change_pct) else 0.0
                points.append(FrontierPoint(label=r.point.label, preset=r.point.preset, runtime=f.runtime,
                                            rtf=f.path_rtf, spectral_loss=r.scores.spectral_loss * (1 + change / 100)))
    return points


SAME_LOSS = 1e-4  # relative: float runtimes of one model differ by about 1e-6, which is no better


def pareto(points: list[FrontierPoint]) -> list[FrontierPoint]:
    """The points no other is both faster and better than, fastest first: the best quality
    to be had at each real-time factor."""
    front, best = [], math.inf
    for point in sorted(points, key=lambda p: (-p.rtf, p.spectral_loss)):
        if point.spectral_loss < best * (1 - SAME_LOSS):
            front.append(point)
            best = point.spectral_loss
    return front


class MeanStd(Frozen):
    mean: float
    std: float

    def line(self, digits: int) -> str:
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


class Spread(Frozen):
    """One setting's scores over its seeds."""

    group: str
    seeds: int
    spectral_loss: MeanStd
    f0_mae_cents: MeanStd
    rpa: MeanStd
    loudness_mae_db: MeanStd


def seed_spread(results: list[PointResult]) -> tuple[list[Spread], list[tuple[str, str, float, float]]]:
    """With two or more seeds per setting: each setting's mean and standard deviation of
    the scores, and the pairs of settings whose spectral losses differ by less than the
    larger of their seed spreads (differences the seeds alone could make)."""
    groups = defaultdict(list)
    for result in results:
        if result.scores and _number(result.scores.spectral_loss):
            groups[result.point.group].append(result.scores)
    spread = []
    for group, scores in groups.items():
        if len(scores) < 2:
            continue
        spread.append(Spread(group=group, seeds=len(scores), **{
            score: MeanStd(mean=statistics.mean(values), std=statistics.stdev(values))
            for score in SCORES for values in [[getattr(s, score) for s in scores]]}))
    close = []
    for a, b in itertools.combinations(spread, 2):
        difference = abs(a.spectral_loss.mean - b.spectral_loss.mean)
        noise = max(a.spectral_loss.std, b.spectral_loss.std)
        if difference < noise:
            close.append((a.group, b.group, difference, noise))
    return spread, close


def report(name: str, dataset: str, results: list[PointResult], frontier_png: str, curves_png: str) -> str:
    """The sweep's report (Markdown): the table, the front, the seed spread, the failures."""
    runtimes = runtimes_of(results)
    done = [r for r in results if r.done]
    lines = [f"# Sweep `{name}` on `{dataset}`", "",
             f"{len(done)} of {len(results)} points done. Real-time factors: one thread, batch 1, 4 s of the dataset's "
             "controls; the whole path is each runtime's decoder and the engine's synthesis.", "",
             "| point | decoder parameters | spectral loss | f0 cents (RPA) | loudness dB | training s | steps/s | "
             + " | ".join(f"{r} x (int8 loss)" if "int8" in r else f"{r} x" for r in runtimes) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(runtimes)]
    for result in done:
        cells = []
        for runtime in runtimes:
            figures = result.runtime(runtime)
            rtf, change = (figures.path_rtf, figures.loss_change_pct) if figures else (None, None)
            cells.append("-" if not _number(rtf) else f"{rtf:,.0f}" + (f" ({change:+.1f}%)" if "int8" in runtime
                                                                       and _number(change) else ""))
        scores = result.scores
        lines.append(f"| {result.point.label} | {result.decoder_parameters:,} | {scores.spectral_loss:.3f} | "
                     f"{scores.f0_mae_cents:.1f} ({scores.rpa:.3f}) | {scores.loudness_mae_db:.2f} | "
                     f"{result.training_s:.0f} | {result.steps_per_s:.2f} | " + " | ".join(cells) + " |")
    front = pareto(frontier_points(done))
    lines += ["", "## Best at each real-time factor", "",
              "The Pareto front, fastest first: each is the best quality to be had at its speed or faster (a "
              "runtime's spectral loss: the evaluation's, times its change on the parity examples).", ""]
    lines += [f"- {p.rtf:,.0f}x real time: **{p.label}** on {p.runtime}, spectral loss "
              f"{p.spectral_loss:.3f}" for p in front] or ["- no point has both scores and runtimes"]
    spread, close = seed_spread(done)
    if spread:
        lines += ["", "## Seeds", "", "| setting | seeds | spectral loss | f0 cents | loudness dB |", "|---|---|---|---|---|"]
        lines += [f"| {s.group} | {s.seeds} | {s.spectral_loss.line(3)} | {s.f0_mae_cents.line(1)} | "
                  f"{s.loudness_mae_db.line(2)} |" for s in spread]
        lines += ["", "Spectral-loss differences smaller than the seed spread (not to be read as real):", ""]
        lines += [f"- {a} vs {b}: {d:.3f} apart, seed spread {n:.3f}" for a, b, d, n in close] or ["- none"]
    failed = [r for r in results if not r.done]
    if failed:
        lines += ["", "## Failed points", ""] + [f"- {r.point.label}: {r.status}" for r in failed]
    lines += ["", "## Quality and speed", "", f"![frontier]({frontier_png})", "", "## Learning curves", "",
              f"![learning curves]({curves_png})"]
    return "\n".join(lines) + "\n"

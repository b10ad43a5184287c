"""Sweeps in the data root: `<root>/sweeps/<name>-<id>/`, the id a hash of what the sweep
compares (its dataset version and its points), so running a sweep again writes the same folder."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..locations import location


@dataclass(frozen=True)
class SweepLayout:
    """The files of one sweep: what it compared and what came of it."""

    dir: Path

    @property
    def spec(self) -> Path:
        """What was swept: the dataset version and every point's settings."""
        return self.dir / "sweep.json"

    @property
    def summary(self) -> Path:
        """One row per point: settings, status, model, scores, training time; written last."""
        return self.dir / "summary.parquet"

    @property
    def runtimes(self) -> Path:
        """One row per (point, runtime): real-time factors, times and loss change (`RuntimeFigures`)."""
        return self.dir / "runtimes.parquet"

    @property
    def frontier(self) -> Path:
        """Spectral loss against the whole path's real-time factor, the Pareto front drawn."""
        return self.dir / "frontier.png"

    @property
    def curves(self) -> Path:
        """Eval loss of every point against step and against training wall-clock."""
        return self.dir / "curves.png"

    @property
    def report(self) -> Path:
        """The table, the best point at each real-time factor, the seed spread and the failures."""
        return self.dir / "report.md"


def sweep_layout(data_root: Path, name: str, spec: dict) -> SweepLayout:
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    return SweepLayout(location(data_root) / "sweeps" / f"{name}-{digest}")

"""Run folders: `<data root>/<dataset>/runs/<run id>/`, one per (dataset version, recipe).

The id hashes the dataset version and the training recipe but not the step budget, so
asking for more steps continues the same run from its latest checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from nas.atomic import write_json
from nas.models.presets import TrainConfig

CONFIG_FILE = "config.json"
SUMMARY_FILE = "run.json"
MODEL_FILE = "model.json"


@dataclass(frozen=True)
class RunLayout:
    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / CONFIG_FILE

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.parquet"

    @property
    def samples(self) -> Path:
        return self.dir / "samples"

    @property
    def model(self) -> Path:
        return self.dir / "model"

    @property
    def loss_plot(self) -> Path:
        return self.dir / "loss.png"

    @property
    def summary(self) -> Path:
        return self.dir / SUMMARY_FILE


def run_id(metadata: dict, config: TrainConfig) -> str:
    recipe = {"dataset": metadata["name"], "dataset_version": metadata["version"], **config.recipe()}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return f"{config.preset}-{digest}"


def run_layout(data_root: Path, metadata: dict, config: TrainConfig) -> RunLayout:
    return RunLayout(Path(data_root) / metadata["name"] / "runs" / run_id(metadata, config))


def model_version(run: str, step: int) -> str:
    return f"{run}-{step}"


def write_run_config(layout: RunLayout, dataset_dir: Path, metadata: dict, config: TrainConfig,
                     software: dict) -> None:
    write_json(layout.config, {
        "run_id": layout.dir.name,
        "config": config.model_dump(mode="json"),
        "dataset": {"name": metadata["name"], "version": metadata["version"], "dir": str(dataset_dir),
                    "sample_rate": metadata["sample_rate"], "frame_rate": metadata["frame_rate"],
                    "example_secs": metadata["example_secs"], "centered": metadata["centered"]},
        "software": software,
    })


def load_summary(layout: RunLayout) -> dict | None:
    return json.loads(layout.summary.read_text()) if layout.summary.exists() else None

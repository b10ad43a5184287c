"""What the training loop reports through (W&B in tasks/, nothing by default); free of
TensorFlow so that its users can be imported without it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.store.artifacts import RunSummary


@dataclass(frozen=True)
class TrainingStart:
    """What a run is about to do: the loop tells its callbacks before the first step."""

    run_id: str
    run_dir: str
    preset: str
    decoder_parameters: int
    parameters: int
    dataset: str
    dataset_version: str
    start_step: int
    steps: int
    devices: int
    config: dict  # the TrainConfig's dump


@dataclass
class Sample:
    step: int
    sample_rate: int
    original: np.ndarray
    synthesized: np.ndarray
    wav_original: Path
    wav_synthesized: Path
    spectrogram: Path


class Callback:
    """Hooks the loop calls. The default does nothing; tasks/ reports to W&B with one."""

    def on_start(self, start: TrainingStart) -> None:
        pass

    def on_metrics(self, step: int, metrics: dict) -> None:
        pass

    def on_sample(self, sample: Sample) -> None:
        pass

    def on_end(self, summary: RunSummary) -> None:
        pass

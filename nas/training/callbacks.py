"""What the training loop reports through (W&B in tasks/, nothing by default); free of
TensorFlow so that its users can be imported without it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.store.artifacts import RunSummary


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

    def on_start(self, info: dict) -> None:
        pass

    def on_metrics(self, step: int, metrics: dict) -> None:
        pass

    def on_sample(self, sample: Sample) -> None:
        pass

    def on_end(self, summary: RunSummary) -> None:
        pass

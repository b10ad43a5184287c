"""A trained model on disk: its `model/` folder holds the weights (a TensorFlow checkpoint)
and model.json (what it is, and what it was trained on)."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from ..locations import location
from ..store.artifacts import RunSummary
from ..store.cache import local_folder
from ..store.runs import load_model_summary
from .synthesizer import Synthesizer

WEIGHTS = "weights"  # the checkpoint's prefix in model/


def write_weights(model: Synthesizer, model_dir: Path) -> None:
    tf.train.Checkpoint(model=model).write(str(Path(model_dir) / WEIGHTS))


def load_model(model_dir: Path) -> tuple[Synthesizer, RunSummary]:
    """A trained model from its `model/` folder, and its model.json."""
    model_dir = local_folder(location(model_dir))  # a bucket's model/ is fetched first
    summary = load_model_summary(model_dir)
    model = Synthesizer(summary.model, summary.sample_rate, summary.example_secs, summary.input_stats)
    model.build_variables()
    tf.train.Checkpoint(model=model).read(str(model_dir / WEIGHTS)).assert_existing_objects_matched()
    return model, summary

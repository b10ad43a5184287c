"""A trained model to play: its run folder, its dataset's folder, and its CPU engine."""

from __future__ import annotations

import json
from pathlib import Path

from nas.engine.engine import Engine
from nas.locations import location
from nas.store.names import WEIGHTS_FILE
from nas.store.runs import RunLayout, model_summary, run_of


class ModelError(ValueError):
    """A folder that holds no model to play; the message names it and says what to pass."""


def run_paths(model: Path) -> tuple[Path, Path]:
    """A run folder (or its model/ or export/ folder) -> (run folder, the dataset folder it
    was trained on, as its config.json records it)."""
    layout = run_of(model)
    if not layout.config.exists():
        raise ModelError(f"{model}: not a trained run (no {layout.config.name}); "
                         "pass a folder under <data root>/<dataset>/runs/")
    return layout.dir, location(json.loads(layout.config.read_text())["dataset"]["dir"])


def load_engine(run: Path) -> Engine:
    """The exported engine if there is one, else weights taken from the trained model."""
    layout = RunLayout(run)
    if (layout.export / WEIGHTS_FILE).exists():
        return Engine.load(layout.export)
    summary_file = model_summary(layout.model)
    if not summary_file.exists():
        raise ModelError(f"{run}: no trained model yet (no {layout.model.name}/{summary_file.name}): its training "
                         "has not finished; wait for it, or run `nas train` on its config again to resume it")
    from nas.models.saved import load_model
    from nas.models.weights import engine_weights

    model, summary = load_model(layout.model)
    return Engine(summary.model, summary.sample_rate, engine_weights(model), seed=summary.seed)

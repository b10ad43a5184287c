"""What a data root holds: per dataset, the latest dataset version, model and evaluation."""

from __future__ import annotations

from pathlib import Path

from nas.evaluation.history import read_history
from nas.locations import location
from nas.store.datasets import dataset_names, evaluation_history, latest_version
from nas.store.runs import find_model, load_model_summary


def dataset_status(data_root: Path) -> list[dict]:
    rows = []
    root = location(data_root)
    for name in dataset_names(root):
        row = {"dataset": name, "dataset_version": latest_version(root, name).name, "model_version": None,
               "recipe": None, "eval_id": None, "spectral_loss": None, "f0_mae_cents": None, "loudness_mae_db": None,
               "regression": None}
        try:
            model = load_model_summary(find_model(root, name).model)
            row.update(model_version=model.model_version, recipe=model.recipe)
        except FileNotFoundError:
            pass
        history = read_history(evaluation_history(root, name))
        of_latest = [r for r in history if r.model_version == row["model_version"]]
        if of_latest:  # the scores shown are the latest model's
            row.update(of_latest[-1].model_dump(include={"eval_id", "spectral_loss", "f0_mae_cents",
                                                         "loudness_mae_db", "regression"}))
        rows.append(row)
    return rows

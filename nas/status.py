"""What a data root holds: per dataset, the latest dataset version, model and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

from nas.evaluation.history import read_history
from nas.store.datasets import dataset_names, evaluation_history, latest_version
from nas.store.runs import MODEL_FILE, find_model


def dataset_status(data_root: Path) -> list[dict]:
    rows = []
    root = Path(data_root)
    for name in dataset_names(root):
        row = {"dataset": name, "dataset_version": latest_version(root, name).name, "model_version": None,
               "recipe": None, "eval_id": None, "spectral_loss": None, "f0_mae_cents": None, "loudness_mae_db": None,
               "regression": None}
        try:
            model = json.loads((find_model(root, name).model / MODEL_FILE).read_text())
            row["model_version"] = model["model_version"]
            row["recipe"] = model.get("recipe")  # models trained before recipes had names have none
        except FileNotFoundError:
            pass
        history = read_history(evaluation_history(root, name))
        of_latest = [r for r in history if r["model_version"] == row["model_version"]]
        if of_latest:  # the scores shown are the latest model's
            last = of_latest[-1]
            row.update({k: last[k] for k in ("eval_id", "spectral_loss", "f0_mae_cents", "loudness_mae_db",
                                             "regression")})
        rows.append(row)
    return rows

"""The `export` flow: a trained model as ONNX, TFLite, int8 ONNX and the CPU engine's weights."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow

from flows.entry import dataset_config
from flows.evaluate import resolve_model
from nas.store.datasets import published_version
from nas.store.runs import MODEL_FILE
from tasks.export import export_model


@flow(name="export")
def export(config_path: str, model_version: str | None = None, data_root: str = "nas-data",
           parsed: dict | None = None) -> dict:
    """ONNX, TFLite, int8 ONNX and the CPU engine's weights, with parity figures."""
    config, _ = dataset_config(config_path, parsed)
    root = Path(data_root).resolve()
    _, layout = resolve_model(config.name, model_version, None, root)
    trained_on = json.loads((layout.model / MODEL_FILE).read_text())["dataset"]["version"]
    return export_model(layout, published_version(root, config.name, trained_on))  # calibrates on its training data

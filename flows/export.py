"""The `export` flow: a trained model as ONNX, TFLite, int8 ONNX and the CPU engine's weights."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.entry import dataset_config
from flows.evaluate import resolve_model
from nas.constants import DEFAULT_DATA_ROOT
from nas.locations import resolve_root
from nas.store.artifacts import ExportReport
from nas.store.datasets import published_version
from nas.store.runs import finished_export, load_model_summary
from tasks.export import export_model


@flow(name="export")
def export(config_path: str, model_version: str | None = None, data_root: str = DEFAULT_DATA_ROOT,
           parsed: dict | None = None, reuse: bool = False) -> ExportReport:
    """ONNX, TFLite, int8 ONNX and the CPU engine's weights, with parity figures.
    `reuse`: return the run's export if it is of `model_version`."""
    config, _ = dataset_config(config_path, parsed)
    root = resolve_root(data_root)
    _, layout = resolve_model(config.name, model_version, None, root)
    done = finished_export(layout, model_version) if reuse and model_version else None
    if done:
        get_run_logger().info("export of %s is reused: %s", model_version, layout.export)
        return done
    trained_on = load_model_summary(layout.model).dataset.version
    return export_model(layout, published_version(root, config.name, trained_on))  # calibrates on its training data

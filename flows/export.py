"""The `export` flow: a trained model as ONNX, TFLite, int8 ONNX and the CPU engine's
weights (target `nas`), or as DDSP-VST (`ddsp-vst`) or Neutone FX (`neutone`) loads it."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.worker_runs import WORKER_RUN_HOOKS
from flows.entry import dataset_config
from flows.evaluate import resolve_model
from nas.constants import DEFAULT_DATA_ROOT
from nas.locations import resolve_root
from nas.store.datasets import published_version
from nas.store.runs import finished_export, load_model_summary
from tasks.export import export_ddsp_vst, export_model, export_neutone


@flow(name="export", **WORKER_RUN_HOOKS)
def export(config_path: str, model_version: str | None = None, data_root: str = DEFAULT_DATA_ROOT,
           parsed: dict | None = None, reuse: bool = False, target: str = "nas"):
    """`nas`: ONNX, TFLite, int8 ONNX and the CPU engine's weights, with parity figures
    (an ExportReport); `reuse`: return the run's export if it is of `model_version`.
    `ddsp-vst`: the plugin's `.tflite`, named after the dataset (a VstExport); `neutone`:
    model.nm through neutone-sdk's checks (a NeutoneExport)."""
    config, _ = dataset_config(config_path, parsed)
    root = resolve_root(data_root)
    _, layout = resolve_model(config, model_version, None, root)
    if target == "neutone":
        return export_neutone(layout, config.name)
    if target == "ddsp-vst":  # its metadata holds the training data's note ranges
        trained_on = load_model_summary(layout.model).dataset.version
        return export_ddsp_vst(layout, published_version(root, config.name, trained_on), config.name)
    done = finished_export(layout, model_version) if reuse and model_version else None
    if done:
        get_run_logger().info("export of %s is reused: %s", model_version, layout.export)
        return done
    trained_on = load_model_summary(layout.model).dataset.version
    return export_model(layout, published_version(root, config.name, trained_on))  # calibrates on its training data

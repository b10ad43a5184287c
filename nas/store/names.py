"""File names of a run folder, below both the layouts (runs.py) and what the files hold (artifacts.py)."""

CONFIG_FILE = "config.json"
SUMMARY_FILE = "run.json"
MODEL_FILE = "model.json"  # in model/ and export/
EXPORT_FILE = "export.json"  # in export/, with:
WEIGHTS_FILE = "engine.npz"  # the CPU engine's weights
DECODER_ONNX = "decoder.onnx"
DECODER_INT8 = "decoder.int8.onnx"
DECODER_TFLITE = "decoder.tflite"
METRICS_FILE = "metrics.json"  # in evaluations/<id>/, with:
TABLE_FILE = "evaluation.parquet"
REPORT_FILE = "report.html"

"""File names of a run folder, below both the layouts (runs.py) and what the files hold (artifacts.py)."""

CONFIG_FILE = "config.json"
SUMMARY_FILE = "run.json"
MODEL_FILE = "model.json"  # in model/ and export/
EXPORT_FILE = "export.json"  # in export/
METRICS_FILE = "metrics.json"  # in evaluations/<id>/, with:
TABLE_FILE = "evaluation.parquet"
REPORT_FILE = "report.html"

"""prefect.yaml entries: the pipeline deployment that `nas register` adds for a new dataset."""

from __future__ import annotations

from pathlib import Path

import yaml

from nas.atomic import atomic_path
from nas.config import ConfigError, load_config
from nas.constants import DEFAULT_DATA_ROOT

PIPELINES_MARKER = "# Per-dataset pipelines"  # `nas register` appends below this line of prefect.yaml
PIPELINE_ENTRYPOINT = "flows/pipeline.py:pipeline"
WORK_POOL = "nas-process"


def pipeline_deployment(name: str, config_path: str, data_root: str = DEFAULT_DATA_ROOT) -> str:
    """The prefect.yaml entry (as YAML text) that runs the whole DAG for one dataset config,
    with the config's training recipe as visible parameters."""
    config, _ = load_config(config_path)
    entry = {"name": f"pipeline-{name}",
             "description": f"The whole DAG for the {name} dataset (prepare, train, evaluate, export).",
             "entrypoint": PIPELINE_ENTRYPOINT,
             "parameters": {"config_path": config_path, "data_root": data_root,
                            "training": {"preset": config.training.preset, "steps": config.training.steps}},
             "work_pool": {"name": WORK_POOL}}
    text = yaml.safe_dump([entry], sort_keys=False, width=120)
    return "".join(f"  {line}" for line in text.splitlines(keepends=True))  # an item of `deployments:`


def add_pipeline_deployment(prefect_yaml: Path, name: str, config_path: str, data_root: str = DEFAULT_DATA_ROOT) -> bool:
    """Append the dataset's pipeline deployment to prefect.yaml unless it is there already."""
    text = prefect_yaml.read_text()
    if PIPELINES_MARKER not in text:
        raise ConfigError(f"{prefect_yaml}: no '{PIPELINES_MARKER}' section to add the deployment to")
    deployments = yaml.safe_load(text).get("deployments") or []
    if any(d.get("name") == f"pipeline-{name}" for d in deployments):
        return False
    with atomic_path(prefect_yaml) as tmp:
        tmp.write_text(text.rstrip("\n") + "\n\n" + pipeline_deployment(name, config_path, data_root))
        yaml.safe_load(tmp.read_text())  # still valid YAML
    return True

"""The `reevaluate` flow (scheduled in prefect.yaml): the own model of every dataset config
(the run its training section makes), scored on its latest dataset version. Each evaluation joins its dataset's history
and is compared with the previous one of the same model and data, so a regression (a
changed dataset, library or machine) shows in the table this flow publishes."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.worker_runs import WORKER_RUN_HOOKS
from flows.entry import config_dump
from flows.evaluate import evaluate, resolve_model
from nas.config import ConfigError, load_config
from nas.constants import DEFAULT_DATA_ROOT
from nas.locations import resolve_root


@flow(name="reevaluate", **WORKER_RUN_HOOKS)
def reevaluate(configs_dir: str = "dataset_configs", data_root: str = DEFAULT_DATA_ROOT) -> list[dict]:
    logger = get_run_logger()
    rows = []
    for config_path in sorted(p for p in Path(configs_dir).glob("*.yaml") if not p.name.startswith(".")):
        try:
            config, _ = load_config(config_path)
            resolve_model(config, None, None, resolve_root(data_root))
        except (ConfigError, FileNotFoundError) as error:
            logger.info("skipping %s: %s", config_path.name, error)
            rows.append({"config": config_path.name, "dataset": None, "status": f"skipped: {error}"})
            continue
        state = evaluate(str(config_path), data_root=data_root, parsed=config_dump(config), return_state=True)
        if state.is_failed():  # one dataset's failure does not stop the others
            logger.warning("evaluation of %s failed: %s", config.name, state.message)
            rows.append({"config": config_path.name, "dataset": config.name, "status": f"failed: {state.message}"})
            continue
        result = state.result()
        rows.append({"config": config_path.name, "dataset": config.name, "status": "evaluated",
                     "model_version": result.model_version, "dataset_version": result.dataset.version,
                     "eval_id": result.eval_id, "spectral_loss": round(result.metrics.spectral_loss, 4),
                     "regression": "; ".join(result.regressions) or "no"})
    create_table_artifact(table=rows, key="reevaluation", description="Latest scheduled re-evaluation")
    return rows

"""The one way nas opens a W&B run: quiet (our console stays ours), in the data root's
wandb folder, with the dataset config's project, entity and time-out."""

from __future__ import annotations

import os
from pathlib import Path

from nas.config import WandbConfig


def resolve_mode(config: WandbConfig) -> str:
    """auto: online when WANDB_API_KEY is set (wandb reads it), else offline."""
    if config.mode != "auto":
        return config.mode
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def open_run(config: WandbConfig, mode: str, wandb_dir: Path, job_type: str, name: str, run_config: dict,
             group: str | None = None):
    import wandb

    wandb_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(project=config.project, entity=config.entity, mode=mode, dir=str(wandb_dir), job_type=job_type,
                      name=name, group=group, config=run_config, reinit="create_new",
                      settings=wandb.Settings(silent=True, console="off", init_timeout=config.timeout_s))

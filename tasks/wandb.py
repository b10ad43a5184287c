"""The one way nas opens a W&B run: quiet (our console stays ours), in the data root's
wandb folder, with the dataset config's project, entity and time-out."""

from __future__ import annotations

import importlib
import os
import sys
import threading
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

    _import_launch_apart()
    wandb_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(project=config.project, entity=config.entity, mode=mode, dir=str(wandb_dir), job_type=job_type,
                      name=name, group=group, config=run_config, reinit="create_new",
                      settings=wandb.Settings(silent=True, console="off", init_timeout=config.timeout_s))


LAUNCH = "wandb.sdk.launch"


def _import_launch_apart() -> None:
    """A process's first wandb.init imports wandb's launch package (to apply staged launch
    inputs); its pydantic models read their attribute docstrings by walking the importing
    stack, each frame a search of sys.modules. In a flow's task (`nas run`'s dataset upload)
    the first run took 6.7 to 9.5 s of CPU in the main checkout, 2 s in a worktree (cause not
    found); with the import in a thread of its own, with a short stack, 1.2 to 2 s in both."""
    if LAUNCH not in sys.modules:
        thread = threading.Thread(target=_import_quietly, args=(LAUNCH,), name="import-wandb-launch")
        thread.start()
        thread.join()


def _import_quietly(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception:  # wandb.init imports it again, and logs what failed where wandb logs
        pass

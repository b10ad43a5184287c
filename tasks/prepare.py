"""Prefect tasks of the data half: one per stage of nas.data.prepare, and the W&B upload and cards.

Heavy stages are cached by the dataset version (a hash of the sources' bytes and the
parameters). A cached result is only trusted while its product is on disk.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from nas.config import DatasetConfig
from nas.data.audio import SourceFile
from nas.data.prepare import STAGES, Stage
from nas.store.artifacts import WandbRecord
from nas.store.cache import wandb_dir
from nas.store.datasets import DatasetLayout, load_metadata

from .cards import dataset_card, source_table
from .wandb_upload import upload_dataset


def _version_key(stage: str):
    # "typed": the stages' results became pydantic models; a dict cached before is not reused
    return lambda context, parameters: (f"nas-{stage}-typed-{parameters['layout'].name}-"
                                        f"{parameters['layout'].version}")


def _cached(stage: Stage) -> dict:
    return {"cache_key_fn": _version_key(stage.name), "persist_result": True}


# The stages of nas.data.prepare, each as a task of the same name (and docstring).
TASKS = {stage.name: task(stage.run, name=stage.name, **(_cached(stage) if stage.done else {}))
         for stage in STAGES}


def run_as_task(stage: Stage, *args):
    """What `nas.data.prepare.prepare_dataset` runs each stage with in the flow: a cached stage's
    cache is trusted only while its product is on disk."""
    stage_task = TASKS[stage.name]
    if stage.done is not None:
        layout = next(a for a in args if isinstance(a, DatasetLayout))
        stage_task = stage_task.with_options(refresh_cache=not stage.done(layout))
    return stage_task(*args)


@task(name="wandb-dataset-artifact")  # retried inside, with back-off
def wandb_artifact(config: DatasetConfig, dataset_dir: Path, root: Path) -> WandbRecord:
    return upload_dataset(dataset_dir, load_metadata(dataset_dir), config.wandb, wandb_dir(root))


@task(name="dataset-card")
def publish_cards(dataset_dir: Path, sources: list[SourceFile], wandb_info: WandbRecord) -> None:
    meta = load_metadata(dataset_dir)
    key = f"dataset-{meta.name}"
    create_table_artifact(table=source_table(sources), key=f"{key}-sources",
                          description=f"Source files of {meta.name} {meta.version}")
    create_markdown_artifact(markdown=dataset_card(dataset_dir, meta, sources, wandb_info), key=key,
                             description=f"Dataset card of {meta.name} {meta.version}")

"""Prefect tasks of the data half, one per stage of nas.prepare.

Heavy stages are cached by the dataset version (a hash of the sources' bytes and the
parameters). A cached result is only trusted while its product is on disk: the flow
passes `refresh_cache` when it is not.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from nas import dataset as ds
from nas import prepare as stages
from nas.audio import SourceFile
from nas.config import DatasetConfig
from nas.store.datasets import DatasetLayout, load_metadata

from .cards import dataset_card, source_table
from .wandb_upload import upload_dataset


def _version_key(stage: str):
    return lambda context, parameters: f"nas-{stage}-{parameters['layout'].name}-{parameters['layout'].version}"


@task(name="ingest")
def scan_sources(config: DatasetConfig, base: Path) -> list[SourceFile]:
    """Find, hash, decode and check every source file (skips are recorded, not raised)."""
    return ds.scan_sources(config, base)


@task(name="features-and-records", cache_key_fn=_version_key("records"), persist_result=True)
def build_records(config: DatasetConfig, sources: list[SourceFile], layout: DatasetLayout) -> dict:
    """CREPE f0 + loudness and the sharded TFRecords, by the Beam pipeline."""
    return ds.build_records(config, sources, layout)


@task(name="review-sources")
def review_sources(sources: list[SourceFile], layout: DatasetLayout) -> list[SourceFile]:
    """Flag sources whose pitch confidence says they are not one melodic line."""
    return stages.review_stage(sources, layout)


@task(name="statistics", cache_key_fn=_version_key("statistics"), persist_result=True)
def statistics(config: DatasetConfig, sources: list[SourceFile], layout: DatasetLayout, summary: dict) -> dict:
    return stages.statistics_stage(config, sources, layout, summary)


@task(name="plots")
def plots(layout: DatasetLayout) -> None:
    stages.plots_stage(layout)


@task(name="publish")
def publish(config: DatasetConfig, sources: list[SourceFile], layout: DatasetLayout, summary: dict) -> Path:
    return stages.publish_stage(config, sources, layout, summary)


@task(name="wandb-dataset-artifact")  # retried inside, with back-off
def wandb_artifact(config: DatasetConfig, dataset_dir: Path, root: Path) -> dict:
    return upload_dataset(dataset_dir, load_metadata(dataset_dir), config.wandb, root / "wandb")


@task(name="dataset-card")
def publish_cards(dataset_dir: Path, sources: list[SourceFile], wandb_info: dict) -> None:
    meta = load_metadata(dataset_dir)
    key = f"dataset-{meta['name']}"
    create_table_artifact(table=source_table(sources), key=f"{key}-sources",
                          description=f"Source files of {meta['name']} {meta['version']}")
    create_markdown_artifact(markdown=dataset_card(dataset_dir, meta, sources, wandb_info), key=key,
                             description=f"Dataset card of {meta['name']} {meta['version']}")

"""The Prefect task of export, with its card."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact

from nas.store.artifacts import ExportReport
from nas.store.runs import RunLayout

from .cards import export_card
from .leases import lock
from .train import waiting


@task(name="export-model")
def export_model(layout: RunLayout, dataset_dir: Path) -> ExportReport:
    from nas.export.bundle import export_model as export_bundle

    with lock(layout.lock, waiting(layout)):
        report = export_bundle(layout.model, dataset_dir, layout.export)
    create_markdown_artifact(markdown=export_card(report, layout.export), key=f"export-{report.dataset.name}",
                             description=f"Exports of {report.model_version}")
    return report

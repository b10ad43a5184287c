"""The Prefect tasks of export: nas's own formats (with their card), DDSP-VST's and Neutone's."""

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


@task(name="export-ddsp-vst")
def export_ddsp_vst(layout: RunLayout, dataset_dir: Path, name: str):
    """The model as DDSP-VST loads it, in the run's ddsp-vst/ (nas.play.ddsp_vst)."""
    from nas.models.saved import load_model
    from nas.play import ddsp_vst
    from nas.store.datasets import load_statistics

    with lock(layout.lock, waiting(layout)):
        model, summary = load_model(layout.model)
        return ddsp_vst.export(model, load_statistics(dataset_dir), summary.sample_rate, layout.ddsp_vst, name)


@task(name="export-neutone")
def export_neutone(layout: RunLayout, name: str):
    """The model for Neutone FX, in the run's neutone/ (nas.play.neutone)."""
    from nas.play import neutone
    from nas.play.model import load_engine
    from nas.store.runs import load_model_summary

    with lock(layout.lock, waiting(layout)):
        version = load_model_summary(layout.model).model_version
        return neutone.export(load_engine(layout.dir), layout.neutone, name, version)

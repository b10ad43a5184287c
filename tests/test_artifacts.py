"""The typed artifacts read what older nas wrote: `tests/data/root-3f1acce/` holds the JSON
files (and the evaluation history) of a data root written by nas at 3f1acce, before these
types existed (a tiny dataset, a 10-step cnn-tiny run, two evaluations, an export; the
records, weights and audio are left out). Saved again, each keeps every key it had."""

import json
import shutil
from pathlib import Path

import pytest

from nas.evaluation.history import read_history
from nas.store.artifacts import Evaluation, ExportReport, RunSummary
from nas.store.datasets import latest_version, load_metadata
from nas.store.runs import find_model, finished_export, finished_run, load_model_summary, load_summary

OLD = Path(__file__).parent / "data" / "root-3f1acce"


@pytest.fixture()
def old_root(tmp_path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(OLD, root)
    return root


def _within(old, new) -> bool:
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and _within(v, new[k]) for k, v in old.items())
    return old == new


def _kept(old: Path, saved: Path) -> None:
    """Every key of the old file, at every depth, is in the saved one with the same value
    (saving may add keys with their defaults, such as a model setting added since)."""
    before, after = json.loads(old.read_text()), json.loads(saved.read_text())
    assert _within(before, after), (before, after)


def test_a_dataset_written_before_the_types_loads_and_saves_unchanged(old_root, tmp_path):
    dataset_dir = latest_version(old_root, "old-violin")
    meta = load_metadata(dataset_dir)
    assert meta.name == "old-violin" and meta.version == dataset_dir.name
    assert meta.counts.train >= 2 and meta.counts.eval >= 1 and meta.counts.evaluated == "eval"
    assert meta.crepe.model == "tiny" and meta.crepe.viterbi and meta.sources.ok == 1
    meta.save(tmp_path / "dataset.json")
    _kept(dataset_dir / "dataset.json", tmp_path / "dataset.json")
    saved = json.loads((tmp_path / "dataset.json").read_text())
    assert meta.pitch.method == "crepe" and saved.pop("pitch")["method"] == "crepe"  # tracked by CREPE, as all then
    assert saved == json.loads((dataset_dir / "dataset.json").read_text())


def test_a_run_written_before_the_types_loads_with_the_defaults_of_its_time(old_root, tmp_path):
    layout = find_model(old_root, "old-violin")
    summary = load_summary(layout)
    assert summary == load_model_summary(layout.model)
    assert summary.step == 10 and summary.preset == "cnn-tiny" and summary.model_version == f"{layout.dir.name}-10"
    # keys added since: not recorded then (recipe, optimiser), or what the model was then
    assert summary.recipe is None and summary.optim is None and summary.loss is None and summary.input_stats is None
    assert summary.model.output_norm and summary.model.reverb_scale == 1.0 and not summary.model.standardize_inputs
    assert summary.model.norm == "sequence"  # ddsp's Normalize over the whole clip, as every model was then
    assert summary.decoder_parameters == 2446 and summary.final.eval_loss < summary.final.initial_eval_loss
    assert finished_run(layout, 10).run_dir == str(layout.dir)  # where it is now, not where it was written
    assert finished_run(layout, 11) is None
    summary.save(tmp_path / "run.json")
    _kept(layout.summary, tmp_path / "run.json")


def test_evaluations_exports_and_history_written_before_the_types_load(old_root, tmp_path):
    layout = find_model(old_root, "old-violin")
    summary = load_summary(layout)
    history = read_history(old_root / "old-violin" / "evaluations.parquet")
    assert [row.model_version for row in history] == [summary.model_version] * 2
    first, second = (Evaluation.load(Path(p)) for p in sorted(layout.evaluations.glob("*/metrics.json")))
    assert second.previous_eval_id == first.eval_id and not second.regression
    assert second.metrics == first.metrics and second.metrics.examples == load_metadata(
        latest_version(old_root, "old-violin")).counts.eval
    assert second.metrics.line().startswith(f"spectral loss {second.metrics.spectral_loss:.3f}, f0 ")
    assert history[-1].line() == second.metrics.line()  # one format for a history row and an evaluation
    assert [item.original for item in first.listen] == ["listen/000-original.wav"]
    second.save(tmp_path / "metrics.json")
    _kept(Path(layout.evaluations / second.eval_id / "metrics.json"), tmp_path / "metrics.json")

    report = finished_export(layout, summary.model_version)
    assert isinstance(report, ExportReport) and report.model_version == summary.model_version
    assert report.float_within_tolerance and report.spectral_loss.float_ > 0
    assert finished_export(layout, "another-model") is None
    report.save(tmp_path / "export.json")
    _kept(layout.export / "export.json", tmp_path / "export.json")
    assert RunSummary.load(layout.export / "model.json") == summary

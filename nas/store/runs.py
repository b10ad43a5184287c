"""Run folders: `<data root>/<dataset>/runs/<run id>/`, one per (dataset version, recipe).

The id hashes the dataset version and the training recipe but not the step budget, so
asking for more steps continues the same run from its latest checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_json
from ..config.presets import TrainConfig
from ..locations import location
from .artifacts import DatasetMeta, ExportReport, RunSummary
from .names import CONFIG_FILE, EXPORT_FILE, MODEL_FILE, SUMMARY_FILE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunLayout:
    """The files of one training run, with its model, evaluations and exports."""

    dir: Path

    @property
    def config(self) -> Path:
        """The resolved training settings, the dataset version and the software it ran with."""
        return self.dir / CONFIG_FILE

    @property
    def checkpoints(self) -> Path:
        """TensorFlow checkpoints; a run resumes from the latest."""
        return self.dir / "checkpoints"

    @property
    def metrics(self) -> Path:
        """Losses, learning rate, steps/s and eval loss by step."""
        return self.dir / "metrics.parquet"

    @property
    def samples(self) -> Path:
        """Audio and spectrograms of an eval example during training."""
        return self.dir / "samples"

    @property
    def model(self) -> Path:
        """The trained model: weights and model.json (the run summary it was saved with)."""
        return self.dir / "model"

    @property
    def export(self) -> Path:
        """ONNX, TFLite, int8 ONNX and the engine's weights; export.json, its commit object, last."""
        return self.dir / "export"

    @property
    def ddsp_vst(self) -> Path:
        """The model as DDSP-VST loads it (nas.play.ddsp_vst) and its reverb as WAVs."""
        return self.dir / "ddsp-vst"

    @property
    def neutone(self) -> Path:
        """The model for Neutone FX (nas.play.neutone): model.nm, metadata.json, samples/."""
        return self.dir / "neutone"

    @property
    def runtimes(self) -> Path:
        """The export measured in each runtime (nas.export.runtimes)."""
        return self.dir / "runtimes.json"

    @property
    def evaluations(self) -> Path:
        """One folder per evaluation: metrics.json (commit object), evaluation.parquet, listen/, report.html."""
        return self.dir / "evaluations"

    @property
    def loss_plot(self) -> Path:
        """The loss curves."""
        return self.dir / "loss.png"

    @property
    def summary(self) -> Path:
        """run.json: what was trained on what, how far, with which result."""
        return self.dir / SUMMARY_FILE

    @property
    def wandb(self) -> Path:
        """Where the run's W&B run went (written by the train flow)."""
        return self.dir / "wandb.json"

    @property
    def lock(self) -> Path:
        """Held by whatever writes into the run (training, evaluation, export): one at a time."""
        return self.dir.parent / f".{self.dir.name}.lock"


def run_of(path: Path) -> RunLayout:
    """The run a folder belongs to: the run folder itself, or its model/ or export/."""
    path = location(path)
    parent = RunLayout(path.parent)
    return parent if path in (parent.model, parent.export) else RunLayout(path)


def run_id(metadata: DatasetMeta, config: TrainConfig) -> str:
    recipe = {"dataset": metadata.name, "dataset_version": metadata.version, **config.identity()}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return f"{config.preset}-{digest}"


def run_layout(data_root: Path, metadata: DatasetMeta, config: TrainConfig) -> RunLayout:
    return RunLayout(location(data_root) / metadata.name / "runs" / run_id(metadata, config))


def model_version(run: str, step: int) -> str:
    return f"{run}-{step}"


def write_run_config(layout: RunLayout, dataset_dir: Path, metadata: DatasetMeta, config: TrainConfig,
                     software: dict) -> None:
    write_json(layout.config, {
        "run_id": layout.dir.name,
        "config": config.model_dump(mode="json"),
        "dataset": {**metadata.model_dump(include={"name", "version", "sample_rate", "frame_rate", "example_secs",
                                                   "centered"}), "dir": str(dataset_dir)},
        "software": software,
    })


def load_summary(layout: RunLayout) -> RunSummary | None:
    return RunSummary.load(layout.summary) if layout.summary.exists() else None


def finished_run(layout: RunLayout, steps: int, minutes: float | None = None) -> RunSummary | None:
    """The run's summary if it is trained to at least `steps`, or for at least `minutes`, and
    its latest checkpoint is that final step (checkpoints are named ckpt-<step>); read
    without TensorFlow. Said on the console when found."""
    summary = trained_to(layout, steps, minutes)
    if summary:
        log.info("%s is already trained to step %d: %s", layout.dir.name, summary.step, layout.model)
    return summary


def trained_to(layout: RunLayout, steps: int, minutes: float | None = None) -> RunSummary | None:
    """`finished_run`, silently."""
    summary = load_summary(layout)
    state = layout.checkpoints / "checkpoint"  # TensorFlow's text record of the latest checkpoint
    spent = minutes is not None and summary is not None and (summary.trained_s or 0) >= 60 * minutes
    if not summary or summary.step < steps and not spent or not state.exists():
        return None
    latest = re.search(r'^model_checkpoint_path: "(.*)"$', state.read_text(), re.MULTILINE)
    if not latest or not latest.group(1).endswith(f"ckpt-{summary.step}"):
        return None
    return summary.model_copy(update={"run_dir": str(layout.dir)})  # where it is now (data roots get moved)


def model_summary(model_dir: Path) -> Path:
    """The model.json of a run's model/ (or of an export folder): the run summary it was saved with."""
    return location(model_dir) / MODEL_FILE


def load_model_summary(model_dir: Path) -> RunSummary:
    return RunSummary.load(model_summary(model_dir))


def export_report(layout: RunLayout) -> Path:
    return layout.export / EXPORT_FILE


def finished_export(layout: RunLayout, model_version: str) -> ExportReport | None:
    """The export report if the run's export/ holds this model version."""
    path = export_report(layout)
    report = ExportReport.load(path) if path.exists() else None
    return report if report and report.model_version == model_version else None


def _saved_models(runs: Path) -> list[tuple[float, Path, RunSummary]]:
    """(saved at, run folder, model.json) of every model saved under a dataset's runs/."""
    return [(p.stat().st_mtime, p.parent.parent, load_model_summary(p.parent))
            for p in runs.glob(f"*/model/{MODEL_FILE}")]


def config_run(data_root: Path, metadata: DatasetMeta, config: TrainConfig) -> RunLayout:
    """The run that training `config` on this dataset version makes (what `nas run` trains),
    once its model is saved; else FileNotFoundError that says what is missing and what to do."""
    layout = run_layout(data_root, metadata, config)
    if not model_summary(layout.model).exists():
        trained = sorted(summary.model_version for _, _, summary in _saved_models(layout.dir.parent))
        raise FileNotFoundError(
            f"{layout.model}: the config's model ({config.preset}, run {layout.dir.name}, dataset version "
            f"{metadata.version}) is not trained yet: `nas train` with the same config and settings trains it, or "
            f"--model-version picks a trained one" + (f" ({', '.join(trained)})" if trained else " (there is none)"))
    return layout


def find_model(data_root: Path, dataset: str, model_version: str | None = None,
               dataset_version: str | None = None) -> RunLayout:
    """The run holding `model_version`, or the most recently exported model of `dataset`
    (trained on `dataset_version` if given)."""
    runs = location(data_root) / dataset / "runs"
    models = _saved_models(runs)
    if model_version:
        models = [m for m in models if m[2].model_version == model_version]
        if not models:
            raise FileNotFoundError(f"{runs}: no exported model {model_version} (a run keeps only its latest model)")
    if dataset_version:
        models = [m for m in models if m[2].dataset.version == dataset_version]
    if not models:
        raise FileNotFoundError(f"{runs}: no trained model of {dataset}"
                                f"{' on dataset version ' + dataset_version if dataset_version else ''}")
    return RunLayout(max(models, key=lambda m: m[0])[1])

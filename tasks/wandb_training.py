"""W&B for training: a training-loop callback that logs losses, learning rate, steps/s,
audio samples and spectrograms, and logs the trained model as an artifact of type `model`.

Online, the run declares the dataset artifact it trained on (`use_artifact`), which W&B
shows as lineage; offline (no key) that call is refused by wandb, so the dataset version
is recorded in the run config and the artifact metadata instead. A W&B failure never
stops training: it is logged once and W&B is left alone for the rest of the run.
"""

from __future__ import annotations

import io
import logging
from dataclasses import asdict
from pathlib import Path

from nas.config import WandbConfig
from nas.locations import is_remote, location
from nas.store.artifacts import RunSummary, WandbRecord
from nas.store.runs import RunLayout
from nas.training.callbacks import Callback, Sample, TrainingStart

from .wandb import open_run, resolve_mode
from .wandb_upload import add_folder

log = logging.getLogger(__name__)


class WandbTraining(Callback):
    def __init__(self, config: WandbConfig, wandb_dir: Path, group: str | None = None):
        self.config = config
        self.group = group  # default: the dataset's name
        self.mode = resolve_mode(config)
        self.wandb_dir = Path(wandb_dir)
        self.run = None
        self.info = WandbRecord(mode=self.mode)

    def _guard(self, action, *args) -> None:
        if self.mode == "disabled" or (self.run is None and action != self._start):
            return
        try:
            action(*args)
        except Exception as error:  # wandb raises many types; training must go on
            log.warning("W&B %s failed (%s: %s); training continues without W&B", action.__name__.strip("_"),
                        type(error).__name__, error)
            self.info = self.info.model_copy(update={"error": f"{type(error).__name__}: {error}"})
            self.mode = "disabled"

    def on_start(self, start: TrainingStart) -> None:
        self._guard(self._start, start)

    def on_metrics(self, step: int, metrics: dict) -> None:
        self._guard(self._metrics, step, metrics)

    def on_sample(self, sample: Sample) -> None:
        self._guard(self._sample, sample)

    def on_end(self, summary: RunSummary) -> None:
        self._guard(self._end, summary)

    def _start(self, start: TrainingStart) -> None:
        self.run = open_run(self.config, self.mode, self.wandb_dir, "train", start.run_id,
                            {k: v for k, v in asdict(start).items() if k not in ("run_id", "run_dir")},
                            group=self.group or start.dataset)
        online = self.mode == "online"
        self.info = self.info.model_copy(update={"run_dir": self.run.dir, "run_name": start.run_id,
                                                 "url": self.run.url if online else None})
        if online:
            self.run.use_artifact(f"{start.dataset}:{start.dataset_version}")

    def _metrics(self, step: int, metrics: dict) -> None:
        self.run.log({f"train/{k}" if k != "eval_loss" else "eval/loss": v for k, v in metrics.items()}, step=step)

    def _sample(self, sample: Sample) -> None:
        import wandb

        self.run.log({
            "samples/original": wandb.Audio(sample.original, sample_rate=sample.sample_rate),
            "samples/resynthesis": wandb.Audio(sample.synthesized, sample_rate=sample.sample_rate),
            "samples/spectrogram": _image(sample.spectrogram),
        }, step=sample.step)

    def _end(self, summary: RunSummary) -> None:
        import wandb

        self.run.summary.update({"final/" + k: v for k, v in summary.final.model_dump().items()})
        artifact = wandb.Artifact(f"{summary.dataset.name}-{summary.preset}", type="model",
                                  metadata=summary.model_dump(mode="json"),
                                  description=f"nas model {summary.describe()}")
        add_folder(artifact, RunLayout(location(summary.run_dir)).model)
        self.run.log_artifact(artifact, aliases=[summary.model_version, "latest"])
        self.info = self.info.model_copy(update={"artifact": f"{artifact.name}:{summary.model_version}"})
        self.run.finish()
        self.run = None

    def close(self) -> None:
        """Finish a run left open by a failure in training."""
        if self.run is not None:
            try:
                self.run.finish(exit_code=1)
            except Exception:
                pass
            self.run = None


def _image(png: Path):
    """A PNG as a W&B image; one in a bucket is read from it (W&B opens local files only)."""
    import wandb

    if not is_remote(png):
        return wandb.Image(str(png))
    from PIL import Image

    return wandb.Image(Image.open(io.BytesIO(png.read_bytes())))

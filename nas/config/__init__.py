"""The dataset config: one YAML file per instrument dataset, validated on load.

Relative audio globs are resolved against the config file's folder. Unknown keys and
wrong types are errors that name the key and the file.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ..constants import SAMPLE_RATE
from ..locations import check_reachable, is_url, location
from ..pitch import CAPACITIES
from .presets import PresetName, RecipeName
from .strict import Strict

POWER_FRAME_SIZE = 1024  # ddsp's dataset statistics take power over frames this long at 16 kHz
NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


class ConfigError(ValueError):
    """A dataset config that cannot be used; the message names the file and key."""


class CrepeConfig(Strict):
    capacity: Literal[CAPACITIES] = Field("full", description="CREPE model size")  # type: ignore[valid-type]
    viterbi: bool = Field(True, description="Viterbi-smoothed f0 (CREPE's HMM) instead of per-frame peaks")
    batch_frames: int = Field(64, gt=0, description="frames per network call (memory vs speed)")


class PitchConfig(Strict):
    method: Literal["crepe", "swiftf0"] = Field(
        "crepe", description="f0 tracker of the records: crepe (the `crepe:` settings; what ddsp and the thesis "
                             "use) or swiftf0 (SwiftF0, a 14k-parameter ONNX network, tens of times faster). "
                             "The evaluation's f0 judge is CREPE either way")


class BeamConfig(Strict):
    runner: str = Field("DirectRunner", description="Beam runner: DirectRunner, DaskRunner, FlinkRunner, ...")
    direct_num_workers: int = Field(1, ge=0, description="DirectRunner workers (0: one per core)")
    direct_running_mode: Literal["in_memory", "multi_threading", "multi_processing"] = Field(
        "multi_processing", description="how the DirectRunner runs its workers (in_memory: one process, the leanest)")
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="extra pipeline options passed through as --key=value")


class WandbConfig(Strict):
    project: str = Field("nas", description="W&B project of the dataset artifact")
    entity: str | None = Field(None, description="W&B team or user (default: the API key's)")
    mode: Literal["auto", "online", "offline", "disabled"] = Field(
        "auto", description="auto: online when WANDB_API_KEY is set, else offline")
    attempts: int = Field(3, gt=0, description="tries of the dataset upload before giving up (with a warning)")
    backoff_s: float = Field(5.0, ge=0, description="wait before the 2nd try, doubled for each one after")
    timeout_s: float = Field(60.0, gt=0, description="how long one try may wait for the W&B server")


class TrainingConfig(Strict):
    preset: PresetName = Field("cnn-tiny", description="model preset (nas/config/presets.py)")
    steps: int = Field(30000, gt=0, description="training steps")
    minutes: float | None = Field(None, gt=0, description="a wall-time budget of training, if it comes before `steps` "
                                                          "(`nas train --minutes`; TrainConfig.minutes)")
    recipe: RecipeName = Field("thesis", description="training recipe: thesis (Adam 3e-4, ddsp's decay) or fast "
                                                     "(3e-3, warm-up, cosine; nas/config/presets.py)")
    overrides: dict[str, str | int | float | bool | list] = Field(
        default_factory=dict, description="dotted settings of the preset, e.g. optim.learning_rate: 0.001")


class DatasetConfig(Strict):
    name: str = Field(description="dataset name: its folder under the data root and its W&B artifact name")
    audio: list[str] = Field(min_length=1, description="folders or globs of audio files")
    sample_rate: int = Field(SAMPLE_RATE, gt=0, description="audio rate of the records")
    frame_rate: int = Field(50, gt=0, description="f0 / loudness frames per second")
    centered: bool = Field(True, description="frames centred on their timestamps (n = secs * rate + 1)")
    example_secs: float = Field(4.0, gt=0, description="length of a training example")
    hop_secs: float = Field(1.0, gt=0, description="step between the starts of consecutive examples")
    chunk_secs: float = Field(20.0, gt=0, description="audio is cut into chunks this long before features")
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="share of chunks held out for eval")
    train_shards: int = Field(2, gt=0, description="TFRecord files of the train split")
    eval_shards: int = Field(1, gt=0, description="TFRecord files of the eval split")
    pitch: PitchConfig = PitchConfig()
    crepe: CrepeConfig = Field(CrepeConfig(), description="CREPE: the tracker where pitch.method is crepe, and the "
                                                          "evaluation's f0 judge")
    beam: BeamConfig = BeamConfig()
    wandb: WandbConfig = WandbConfig()
    training: TrainingConfig = TrainingConfig()

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"{name!r} would put the dataset outside its folder under the data root; "
                             "use a plain name")
        if not NAME.fullmatch(name):
            raise ValueError(f"{name!r}: use lower case letters, digits and . _ - (starting with a letter or digit)")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> DatasetConfig:
        if SAMPLE_RATE % self.frame_rate:
            raise ValueError(f"frame_rate {self.frame_rate} must divide {SAMPLE_RATE} (CREPE hop)")
        if SAMPLE_RATE // self.frame_rate >= POWER_FRAME_SIZE:
            raise ValueError(f"frame_rate {self.frame_rate} is below 16: ddsp's statistics need overlapping "
                             f"{POWER_FRAME_SIZE}-sample power frames")
        if self.sample_rate % self.frame_rate:
            raise ValueError(f"frame_rate {self.frame_rate} must divide sample_rate {self.sample_rate}")
        for key in ("example_secs", "hop_secs", "chunk_secs"):
            frames = getattr(self, key) * self.frame_rate
            if abs(frames - round(frames)) > 1e-9:
                raise ValueError(f"{key} must be a whole number of frames at {self.frame_rate} frames/s")
        if self.chunk_secs < self.example_secs:
            raise ValueError("chunk_secs must be at least example_secs")
        return self

    def parameters(self) -> dict:
        """What changes the prepared data from the same sources: not where they are, not the
        runner, not W&B, not training. (The sources enter the version by their bytes.)"""
        return self.model_dump(exclude={"wandb", "beam", "audio", "training"})


def load_config(path: str | Path) -> tuple[DatasetConfig, Path]:
    """Parse and validate; returns the config and the folder relative globs start from."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return validate_config(raw, path), path.resolve().parent


def validate_config(raw, path: Path) -> DatasetConfig:
    """The schema's verdict on parsed YAML; errors name `path` and each bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    try:
        return DatasetConfig.model_validate(raw)
    except ValidationError as error:
        problems = []
        for e in error.errors():
            key = ".".join(str(part) for part in e["loc"]) or "(config)"
            message = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
            problems.append(f"  {key}: {message}")
        raise ConfigError(f"{path}: invalid dataset config\n" + "\n".join(problems)) from None


def find_audio(config: DatasetConfig, base: Path) -> list[Path]:
    """All files the globs name (folders are searched recursively), sorted, de-duplicated.

    Non-audio suffixes under a folder are ignored; a glob that matches nothing is an error."""
    found: dict[str, Path] = {}
    for pattern in config.audio:
        matches = _bucket_audio(pattern) if is_url(pattern) else _local_audio(pattern, base)
        if not matches:
            raise ConfigError(f"audio: {pattern!r} matches no files" + ("" if is_url(pattern) else f" (looked in {base})"))
        for p in matches:
            found[str(p)] = p
    return [found[k] for k in sorted(found)]


def _local_audio(pattern: str, base: Path) -> list[Path]:
    # normalised by name: `../cello` from a configs folder that does not exist yet still finds it
    full = pattern if Path(pattern).is_absolute() else os.path.normpath(base / pattern)
    if Path(full).is_dir():
        return [p.absolute() for p in Path(full).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES]
    return [Path(p).absolute() for p in glob.glob(full, recursive=True)]


def _bucket_audio(pattern: str) -> list[Path]:
    """Objects under a bucket folder, or matching a glob, as URLs (an unreachable bucket is
    an error that names it)."""
    root = location(pattern)
    check_reachable(root)
    if root.is_dir():
        return [p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()]
    protocol = root.protocol
    return [location(f"{protocol}://{p}") for p in root.fs.glob(root.path)]

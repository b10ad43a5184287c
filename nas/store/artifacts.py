"""What the stages hand on, typed: a dataset's `dataset.json` and `statistics.json`, a run's
`run.json` (and its model's `model.json`) and `metrics.parquet`'s rows, an evaluation's
`metrics.json` and an export's `export.json`.

Each is a frozen pydantic model with `load` and `save`. The files are the JSON they have
always been (same keys, so data roots written before these types still load: see
tests/test_artifacts.py); a key added later has a default, None where older files did not
record it. Each model has one method that says it for people (`describe`, or `line` for
scores), used by the CLI, the Prefect cards and W&B alike.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from ..atomic import json_bytes, write_json
from ..config.presets import LossConfig, ModelConfig, OptimConfig
from ..locations import create_new, is_remote, location
from .names import REPORT_FILE, TABLE_FILE
from .tables import read_rows


class Frozen(BaseModel):
    """Keys a newer nas wrote and this one does not know are left out rather than refused."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Artifact(Frozen):
    @classmethod
    def load(cls, path: Path) -> Self:
        # json.loads, not pydantic's parser: the files hold NaN where a score is undefined
        return cls.model_validate(json.loads(location(path).read_text()))

    def dump(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)

    def save(self, path: Path) -> None:
        write_json(path, self.dump())

    def publish(self, path: Path) -> bool:
        """Write as a product's commit object, which appears only after everything it vouches
        for: in a bucket only if no object is there yet (a conditional write; of two racing
        writers exactly one publishes, and this returns True to that one)."""
        if not is_remote(path):
            self.save(path)
            return True
        return create_new(path, json_bytes(self.dump()))


class Splits(Frozen):
    train: int
    eval: int

    def of(self, split: str) -> int:
        return getattr(self, split)

    @property
    def evaluated(self) -> str:
        """The split an evaluation scores: eval, or train where a dataset has no eval examples."""
        return "eval" if self.eval else "train"


class DatasetRef(Frozen):
    name: str
    version: str


class CrepeMeta(Frozen):
    """The CREPE of a dataset: its tracker where `pitch.method` is crepe, and always the
    judge of an evaluation's f0."""

    model: str
    viterbi: bool


class PitchMeta(Frozen):
    """What tracked the records' f0. A dataset.json from before the choice has none: CREPE."""

    method: str = "crepe"
    implementation: str | None = Field(None, description="swiftf0: the swift-f0 package and version")

    def describe(self, crepe: CrepeMeta) -> str:
        if self.method == "crepe":
            return f"CREPE {crepe.model}{' + Viterbi' if crepe.viterbi else ''}"
        return f"SwiftF0 ({self.implementation})"


class SourceCounts(Frozen):
    ok: int
    skipped: int


class FileDigest(Frozen):
    bytes: int
    sha256: str


class RecordsSummary(Artifact):
    """`.records-done.json` in a staging folder: the records are all written."""

    counts: Splits
    chunks: Splits
    shards: dict[str, FileDigest] | None = Field(None, description="in a bucket: each shard's size and sha256")


class DatasetMeta(Artifact):
    """`dataset.json`: a published dataset version, written last when it is published."""

    name: str
    version: str
    sample_rate: int
    frame_rate: int
    centered: bool
    example_secs: float
    hop_secs: float
    chunk_secs: float
    crepe: CrepeMeta
    pitch: PitchMeta = PitchMeta()
    loudness: dict
    power: dict | None = Field(None, description="how the records' power_db was computed; absent from versions "
                                                 "prepared before nas wrote power (records format 5)")
    split: dict
    chunks: Splits
    counts: Splits
    shards: Splits
    files: dict[str, str]
    sources: SourceCounts
    source_manifest_digest: str
    parameters: dict
    nas_version: str
    software: dict[str, str]
    objects: dict[str, FileDigest] | None = Field(
        None, description="in a bucket: size and sha256 of each file a machine stages to read the records "
                          "(shards, statistics); absent from a local root's dataset.json")

    def dump(self) -> dict:
        dumped = super().dump()
        for key in ("objects", "power"):  # a local root's, or an older version's, dataset.json stays as it was
            if dumped[key] is None:
                del dumped[key]
        return dumped

    @property
    def ref(self) -> DatasetRef:
        return DatasetRef(name=self.name, version=self.version)

    def describe(self) -> str:
        return (f"{self.name} {self.version}: {self.counts.train} train / {self.counts.eval} eval examples of "
                f"{self.example_secs:g} s ({self.pitch.describe(self.crepe)})")


class FinalLosses(Frozen):
    loss: float | None = None
    eval_loss: float | None = None
    initial_eval_loss: float | None = None


class RunSummary(Artifact):
    """`run.json` (and the model's `model.json`): a trained model, what it is and what it
    was trained on. `run_dir` is where the run was when it was read."""

    run_id: str
    run_dir: str
    model_version: str
    step: int
    preset: str
    recipe: str | None = None  # None: trained before recipes had names and were recorded here
    optim: OptimConfig | None = None  # (the run's config.json holds what it trained with)
    loss: LossConfig | None = None  # the objective; None: recorded before it was, ddsp's loss unfloored
    decoder_parameters: int
    dataset: DatasetRef
    sample_rate: int
    example_secs: float
    model: ModelConfig
    input_stats: dict[str, tuple[float, float]] | None = None
    seed: int = 0  # the training's; it also seeds the engines' noise sequence (0 before it was recorded)
    trained_s: float | None = None  # the training loop's wall time, resumed parts added (None: not recorded)
    budget_minutes: float | None = None  # the wall-time budget it trained under, if any
    final: FinalLosses
    files: dict[str, str]

    def describe(self) -> str:
        loss = f", eval loss {self.final.eval_loss:.3f}" if self.final.eval_loss is not None else ""
        return (f"{self.model_version}: {self.preset} ({self.decoder_parameters:,} decoder parameters), recipe "
                f"{self.recipe or '-'}, {self.step} steps on {self.dataset.name} {self.dataset.version}{loss}")


class _ScoreLine:
    """For models with the four score fields (no annotations here: they would become fields first)."""

    def line(self) -> str:
        """The scores as people read them, the same everywhere."""
        return (f"spectral loss {self.spectral_loss:.3f}, f0 {self.f0_mae_cents:.1f} cents "
                f"(RPA {self.rpa:.3f}), loudness {self.loudness_mae_db:.2f} dB")


class Scores(Frozen, _ScoreLine):
    """An evaluation's aggregates over its examples."""

    examples: int
    spectral_loss: float
    loudness_mae_db: float
    confident_frames: int
    f0_mae_cents: float
    rpa: float


class HistoryRow(Frozen, _ScoreLine):
    """One row of a dataset's evaluation history (`evaluations.parquet`), in its column order."""

    eval_id: str
    created: str
    model_version: str
    dataset_version: str
    spectral_loss: float
    f0_mae_cents: float
    rpa: float
    loudness_mae_db: float
    examples: int
    regression: bool
    dir: str

    @classmethod
    def of(cls, evaluation: Evaluation) -> HistoryRow:
        return cls(**evaluation.metrics.model_dump(exclude={"confident_frames"}), eval_id=evaluation.eval_id,
                   created=evaluation.created, model_version=evaluation.model_version,
                   dataset_version=evaluation.dataset.version, regression=evaluation.regression, dir=evaluation.dir)


class EvaluatedDataset(DatasetRef):
    split: str


class Listening(Frozen):
    """One listened example: its files, relative to the evaluation folder."""

    example: int
    original: str
    resynthesis: str
    spectrogram: str
    features: str


class Evaluation(Artifact):
    """`metrics.json`: one evaluation of a model on a dataset version."""

    eval_id: str
    created: str
    model_version: str
    preset: str
    run_id: str
    dataset: EvaluatedDataset
    metrics: Scores
    previous_eval_id: str | None = None
    regression: bool
    regressions: list[str]
    listen: list[Listening]
    seed: int
    previous_model: HistoryRow | None = None
    dir: str

    @property
    def report(self) -> Path:
        return location(self.dir) / REPORT_FILE

    @property
    def table(self) -> Path:
        return location(self.dir) / TABLE_FILE

    def describe(self) -> str:
        return f"evaluation {self.eval_id} of {self.model_version}: {self.metrics.line()}"


class Differences(Frozen):
    """Largest absolute differences from the TensorFlow model on the parity examples."""

    onnx: float
    tflite: float
    engine_decoder: float
    engine_audio_relative: float = Field(description="the largest difference of the engine's audio, of the "
                                         "loudest parity example's peak (exports made before 2026-12-02's change: of each example's own)")


class ExportLosses(Frozen):
    float_: float = Field(alias="float")
    int8: float
    int8_change_pct: float


class ExportReport(Artifact):
    """`export.json`: a model's exports and how closely each reproduces it."""

    model_version: str
    dataset: DatasetRef
    examples: int
    split: str
    frames: int
    max_abs_difference: Differences
    float_tolerance: float
    engine_audio_tolerance: float | None = Field(
        None, description="of the peak; exports from before it was checked have none")
    float_within_tolerance: bool = Field(
        description="every float export within float_tolerance, and the engine's audio within engine_audio_tolerance")
    spectral_loss: ExportLosses
    bytes: dict[str, int]

    def describe(self) -> str:
        d = self.max_abs_difference
        return (f"{self.model_version}: ONNX diff {d.onnx:.1e}, TFLite diff {d.tflite:.1e}, engine audio diff "
                f"{d.engine_audio_relative:.1e} of peak, int8 loss {self.spectral_loss.int8_change_pct:+.2f}%")


class WandbRecord(Frozen):
    """Where a W&B run went (a dataset version's `<version>.wandb.json`, a run's `wandb.json`
    and the cards): its mode, local run folder, page, artifact, or the error that stopped it."""

    mode: str | None = None
    run_dir: str | None = None
    run_name: str | None = None
    url: str | None = None
    artifact: str | None = None
    error: str | None = None

    def save(self, path: Path) -> None:
        write_json(path, self.model_dump(exclude_none=True))  # the keys it has, as the files always had


class Moments(Frozen):
    """ddsp's figures of one quantity's frames: over all of them, and the mean over examples
    of each example's extremes."""

    mean: float
    std: float
    min: float
    max: float
    mean_min: float
    mean_max: float


class LoudnessQuantiles(Frozen):
    """ddsp's quantile transform of note loudness: its quantiles (dB) and their references."""

    quantiles: list[float]
    references: list[float]


class DatasetStatistics(Frozen):
    """A dataset's `statistics.json`: ddsp's statistics of pitch (MIDI), power and loudness
    (dB) over every frame and over the frames of notes. The file keeps ddsp's flat keys
    (`mean_pitch`, `std_power_note`, ...)."""

    pitch: Moments
    pitch_note: Moments
    power: Moments
    power_note: Moments
    loudness: Moments
    loudness_note: Moments
    loudness_quantiles: LoudnessQuantiles

    def of(self, quantity: str, notes: bool = False) -> Moments:
        """`pitch`, `power` or `loudness` (a model's level), over all frames or notes'."""
        return getattr(self, f"{quantity}_note" if notes else quantity)

    @classmethod
    def from_flat(cls, flat: dict) -> DatasetStatistics:
        quantities = [name for name in cls.model_fields if name != "loudness_quantiles"]
        return cls(**{name: {part: flat[f"{part}_{name}"] for part in Moments.model_fields} for name in quantities},
                   loudness_quantiles=flat["loudness_quantiles"])


@dataclass(frozen=True)
class MetricsRow:
    """A row of a run's `metrics.parquet`: what the training loop logged at a step. NaN where
    nothing was logged (a step's training figures and its evaluation are rows of their own)."""

    step: int
    loss: float = math.nan
    eval_loss: float = math.nan
    grad_norm: float = math.nan
    learning_rate: float = math.nan
    steps_per_s: float = math.nan
    elapsed_s: float = math.nan  # the loop's wall time so far, resumed parts added

    @classmethod
    def read(cls, path: Path) -> list[MetricsRow]:
        """The file's rows; a column an older run did not log reads NaN."""
        names = [f.name for f in fields(cls)]
        return [cls(**{k: v for k, v in row.items() if k in names and v is not None}) for row in read_rows(path)]


class RuntimeFigures(Frozen):
    """One runtime's figures; `error` says why there are none."""

    runtime: str
    decoder_ms: float | None = None
    path_ms: float | None = None
    decoder_rtf: float | None = None
    path_rtf: float | None = None
    runs: int = 0
    spectral_loss: float | None = None
    loss_change_pct: float | None = None  # against the engine's own float decoder
    error: str | None = None


class RuntimeReport(Artifact):
    """`<run>/runtimes.json`: an export measured in each runtime."""

    model_version: str
    seconds: float
    threads: int = 1
    batch: int = 1
    examples: int
    runtimes: list[RuntimeFigures]

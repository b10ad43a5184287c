"""`<run>/export/`: everything a deployment needs, with the parity figures that vouch for it.

| file | holds |
|---|---|
| `decoder.onnx`, `decoder.int8.onnx`, `decoder.tflite` | the decoder (see `formats`) |
| `engine.npz`, `model.json` | weights + config for the NumPy engine (`nas.engine`) |
| `export.json` | max abs differences vs TensorFlow, the int8 spectral-loss change, sizes |
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from nas import ddsp_api
from nas.atomic import replace_dir, staging_dir
from nas.config.presets import LossConfig, ModelConfig
from nas.constants import LEVELS
from nas.engine.engine import Engine, OnnxDecoder
from nas.models.decoders import input_keys
from nas.models.saved import load_model
from nas.models.synthesizer import make_preprocessor, make_spectral_loss
from nas.store.artifacts import DatasetMeta, Differences, ExportLosses, ExportReport
from nas.store.datasets import load_metadata
from nas.store.names import DECODER_INT8, DECODER_ONNX, DECODER_TFLITE, EXPORT_FILE, WEIGHTS_FILE
from nas.store.runs import model_summary
from nas.training import data

from . import formats
from nas.models.weights import engine_weights

log = logging.getLogger(__name__)

PARITY_EXAMPLES = 8
CALIBRATION_EXAMPLES = 32
FLOAT_TOLERANCE = 1e-4  # max abs difference of a float export's decoder outputs vs TensorFlow
# The engine's audio vs the model's on the same scaled inputs, of the loudest parity
# example's peak. The two differ by float32 rounding, about 1e-6 of full scale or less:
# 0.6e-6 to 1.0e-6 on five fresh 60-step models of the suite (2.2e-6 to 3.4e-6 of their
# peaks), 1.1e-6 to 1.6e-6 on the demo's models. Taken against each example's own peak, a
# quiet example (peak 0.03) read 3.7e-5 for the same 1.1e-6. Before the engine silenced a
# harmonic whose float32 frequency rounds to Nyquist, as the model does, the violin sweep's
# 1,000-step cnn-tiny read 3.9e-4 (1.9e-6 after).
ENGINE_AUDIO_TOLERANCE = 1e-5


def examples(dataset_dir: Path, split: str, metadata: DatasetMeta, model: ModelConfig, limit: int) -> list[dict]:
    """The first `limit` examples of a split, as the model's preprocessor makes them."""
    preprocessor = make_preprocessor(model, metadata.sample_rate, metadata.example_secs)
    examples = data.examples(dataset_dir, split, metadata, preprocessor).take(limit)
    return [{k: v.numpy() for k, v in example.items()} for example in examples]


def _decoder_outputs(model, examples: list[dict]) -> np.ndarray:
    """[example, frame, output]: the decoder run once on the examples together."""
    out = model.decoder({k: np.stack([e[k] for e in examples]) for k in input_keys(model.config)})
    return tf.concat([out["amps"], out["harmonic_distribution"], out["noise_magnitudes"]], -1).numpy()


def _scaled(example: dict) -> tuple[np.ndarray, np.ndarray]:
    """(the scaled level, f0_scaled) of a preprocessed example: what `Engine.decode_scaled` takes."""
    level = "pw_scaled" if "pw_scaled" in example else "ld_scaled"
    return example[level][:, 0], example["f0_scaled"][:, 0]


def engine_differences(model, engine: Engine, examples: list[dict], seed: int = 0) -> list[tuple[float, float]]:
    """Per example (of one length), (max abs difference of the engine's audio from the
    TensorFlow model's, the model's peak), with the same uniform noise fed to both (ddsp's
    FilteredNoise draws its own inside the model) and the same scaled inputs: the engine
    scales f0 in float64, within 3 float32 ulps of the preprocessor, and a briefly trained
    model can turn that into 5e-4 of its outputs, which would measure the model's
    sensitivity, not the engine. The model runs once on the examples together: eagerly, its
    ops cost about as much on one example as on eight."""
    core = ddsp_api.core()
    out = model({k: np.stack([e[k] for e in examples]) for k in ("f0_hz", *input_keys(model.config))})
    noise = np.random.default_rng(seed).uniform(-1, 1, out["harmonic"].shape[1]).astype(np.float32)
    magnitudes = model.noise.get_controls(out["noise_magnitudes"])["magnitudes"]
    filtered = core.frequency_filter(np.tile(noise, (len(examples), 1)), magnitudes, window_size=0)
    differences = []
    for example, reference in zip(examples, model.reverb(out["harmonic"] + filtered).numpy()):
        ours = engine.synthesize(engine.decode_scaled(*_scaled(example)), example["f0_hz"][:, 0], noise).audio
        differences.append((float(np.abs(ours - reference).max()), float(np.abs(reference).max())))
    return differences


def relative_difference(differences: list[tuple[float, float]]) -> float:
    """The largest difference over examples, of the loudest example's peak."""
    return max(d for d, _ in differences) / max(p for _, p in differences)


def spectral_loss(engine: Engine, examples: list[dict]) -> float:
    """The mean of the examples' spectral losses, the engine's render of each against its
    audio. One call of the loss on them all gives that mean (each term is a mean over the
    elements, and the examples are of one length) for a quarter of the CPU of a call each:
    TensorFlow runs the loss's ops one by one, eagerly."""
    level = LEVELS[engine.level][0]
    rendered = np.stack([engine.render(e["f0_hz"][:, 0], e[level][:, 0]) for e in examples])
    return float(make_spectral_loss(LossConfig())(np.stack([e["audio"] for e in examples]), rendered))


def export_model(model_dir: Path, dataset_dir: Path, out_dir: Path) -> ExportReport:
    """Export the model in `model_dir` (a run's `model/`) into `out_dir`, swapped in whole."""
    model, summary = load_model(model_dir)
    metadata = load_metadata(dataset_dir)
    eval_split = metadata.counts.evaluated
    evaluation = examples(dataset_dir, eval_split, metadata, model.config, PARITY_EXAMPLES)
    calibration = examples(dataset_dir, "train", metadata, model.config, CALIBRATION_EXAMPLES)
    frames = evaluation[0]["f0_scaled"].shape[0]

    staging = staging_dir(out_dir)
    np.savez(staging / WEIGHTS_FILE, **engine_weights(model))
    summary.save(model_summary(staging))
    log.info("exporting %s: ONNX, TFLite, int8 (calibrated on %d training examples)", summary.model_version,
             len(calibration))
    formats.to_onnx(model, staging / DECODER_ONNX)
    formats.to_tflite(model, staging / DECODER_TFLITE, frames)
    formats.quantize_int8(staging / DECODER_ONNX, staging / DECODER_INT8, [_scaled(e) for e in calibration])

    onnx = OnnxDecoder(staging / DECODER_ONNX)
    reference = _decoder_outputs(model, evaluation)
    engine = Engine.load(staging)
    differences = Differences(
        onnx=max(float(np.abs(onnx(*_scaled(e)) - r).max()) for e, r in zip(evaluation, reference)),
        tflite=max(float(np.abs(formats.run_tflite(staging / DECODER_TFLITE, *_scaled(e)) - r).max())
                   for e, r in zip(evaluation, reference)),
        engine_decoder=max(float(np.abs(engine.decoder(*_scaled(e)) - r).max()) for e, r in zip(evaluation, reference)),
        engine_audio_relative=relative_difference(engine_differences(model, engine, evaluation)),
    )
    losses = {"float": spectral_loss(Engine.load(staging, seed=1), evaluation),
              "int8": spectral_loss(Engine.load(staging, DECODER_INT8, seed=1), evaluation)}
    report = ExportReport(
        model_version=summary.model_version, dataset=summary.dataset,
        examples=len(evaluation), split=eval_split, frames=frames,
        max_abs_difference=differences, float_tolerance=FLOAT_TOLERANCE, engine_audio_tolerance=ENGINE_AUDIO_TOLERANCE,
        float_within_tolerance=max(differences.onnx, differences.tflite, differences.engine_decoder) <= FLOAT_TOLERANCE
        and differences.engine_audio_relative <= ENGINE_AUDIO_TOLERANCE,
        spectral_loss=ExportLosses(**losses, int8_change_pct=100 * (losses["int8"] / losses["float"] - 1)),
        bytes={p.name: p.stat().st_size for p in sorted(staging.iterdir())},
    )
    report.save(staging / EXPORT_FILE)
    replace_dir(staging, out_dir, commit=EXPORT_FILE)
    log.info("exported to %s: %s", out_dir, report.describe())
    return report

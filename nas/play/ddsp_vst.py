"""A model as DDSP-VST (magenta/ddsp-vst) loads it: one `.tflite` the plugin calls once per
20 ms with that frame's f0 and power and the state it returned the time before, and that
returns the frame's synthesizer controls.

The contract, as the plugin's sources state it (`src/util/Constants.h`, `ModelLibrary.cpp`,
`PredictControlsModel.cpp`, `InferencePipeline.cpp`):
- inputs `call_f0_scaled:0` [1] (MIDI / 127), `call_pw_scaled:0` [1] (power dB / 80 + 1)
  and `call_state:0` [512];
- outputs `StatefulPartitionedCall:0` to `:3`: amplitude [1], harmonic distribution [60],
  noise magnitudes [65] and state [512], scaled as ddsp's exporter
  (`VSTStatelessPredictControls`) returns them;
- TFLite's builtin ops only: the plugin loads models with the builtin op resolver;
- `metadata.json` in a zip appended to the model's bytes, which the plugin reads with
  `juce::ZipFile` over the whole file (so the zip's offsets count from the file's start).

The plugin synthesizes the harmonics and noise itself and adds its own reverb, so the
trained reverb cannot travel inside the model: it is written beside it as WAVs, as ddsp's
exporter writes it.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from nas import __version__
from nas.atomic import atomic_path
from nas.config.presets import ModelConfig
from nas.constants import NORMALIZE_EPS, SAMPLE_RATE
from nas.models.weights import engine_weights
from nas.store.artifacts import DatasetStatistics

FRAME_RATE = 50  # the plugin calls the model every 320 samples at 16 kHz
STATE_SIZE = 512  # floats the plugin carries from one call to the next
N_HARMONICS, N_NOISE_BANDS = 60, 65
REVERB_RATES = (SAMPLE_RATE, 44100, 48000)  # the impulse response at the model's rate and the DAWs'
RULE = (f"DDSP-VST plays models of {SAMPLE_RATE} Hz audio, {FRAME_RATE} control frames a second, trained on power "
        f"(`--preset ddsp-vst`), with {N_HARMONICS} harmonics, {N_NOISE_BANDS} noise bands and a causal history "
        f"of at most {STATE_SIZE} floats")


class RuleError(ValueError):
    """A model the plugin could not play; the message names the rule and what breaks it."""


def history_floats(config: ModelConfig) -> int | None:
    """Floats of the decoder's causal history (None: it cannot stream). A dilated CNN keeps
    the last (kernel - 1) x dilation frames of each convolution's input: 420 for cnn-tiny,
    6,660 for cnn. A GRU keeps its state: 256 for rnn-tiny, 512 for full."""
    if config.decoder == "rnn-fc":
        return config.rnn_units
    if config.norm == "sequence":
        return None  # ddsp's layer Normalize pools over the whole clip
    reach = config.kernel_size - 1
    return reach * 2 + reach * sum(config.dilations) * config.stacks * config.channels


def check_rule(config: ModelConfig, sample_rate: int) -> None:
    """Raises RuleError naming every part of the rule the model breaks."""
    broken = []
    if sample_rate != SAMPLE_RATE:
        broken.append(f"its audio is {sample_rate} Hz")
    if config.control_rate != FRAME_RATE:
        broken.append(f"it runs {config.control_rate} control frames a second")
    if config.level != "power":
        broken.append(f"it was trained on {config.level}")
    if (config.n_harmonics, config.n_noise_bands) != (N_HARMONICS, N_NOISE_BANDS):
        broken.append(f"it has {config.n_harmonics} harmonics and {config.n_noise_bands} noise bands")
    history = history_floats(config)
    if history is None:
        broken.append("its decoder cannot stream (ddsp's layer Normalize pools over the whole clip)")
    elif history > STATE_SIZE:
        broken.append(f"its decoder's history is {history:,} floats")
    if config.output_norm and config.decoder == "dilated-cnn":
        broken.append("its decoder normalises its output (model.output_norm), which this export does not carry")
    if config.decoder == "rnn-fc" and not broken:
        broken.append("its decoder is a GRU, whose export to DDSP-VST nas does not have yet (use --preset ddsp-vst)")
    if broken:
        raise RuleError(f"{RULE}; this model breaks it: {'; '.join(broken)}")


def _frame_step(model, weights: dict):
    """The decoder one frame at a time, its history in the state, as a tf.function of the
    plugin's three inputs returning its four outputs. `weights`: the decoder's, as
    variables (a function that reads variables is what the converter names
    StatefulPartitionedCall, as the plugin expects)."""
    import tensorflow as tf

    config = model.config
    taps, levels = config.kernel_size, [m for _ in range(config.stacks) for m in config.dilations]
    mean, std = weights["input.mean"], weights["input.std"]
    dense = weights["dense_out.kernel"], weights["dense_out.bias"]
    sizes = [(taps - 1) * 2] + [(taps - 1) * d * config.channels for d in levels]
    used = sum(sizes)

    def conv(x, state, start, kernel, dilation):
        """x [1, in] and its last (taps - 1) x dilation frames in state[start:] -> [1, out]."""
        inputs = x.shape[-1]
        history = tf.reshape(state[start:start + (taps - 1) * dilation * inputs], [-1, inputs])
        window = tf.concat([history, x], 0)
        y = tf.reshape(window[::dilation], [1, -1]) @ tf.reshape(kernel, [taps * inputs, -1])
        return y, tf.reshape(window[1:], [-1])

    def frame_norm(y, i):  # FrameNormalize: each frame's channels
        centre, variance = tf.nn.moments(y, axes=[-1], keepdims=True)
        scaled = (y - centre) * tf.math.rsqrt(variance + NORMALIZE_EPS)
        return scaled * weights[f"res{i}.scale"] + weights[f"res{i}.shift"]

    spec = [tf.TensorSpec([1], tf.float32, name="f0_scaled"), tf.TensorSpec([1], tf.float32, name="pw_scaled"),
            tf.TensorSpec([STATE_SIZE], tf.float32, name="state")]

    @tf.function(input_signature=spec, autograph=False)
    def call(f0_scaled, pw_scaled, state):
        x = ((tf.stack([pw_scaled[0], f0_scaled[0]]) - mean) / std)[None]  # the decoder's input order
        x, history = conv(x, state, 0, weights["input_conv"], 1)
        kept, start = [history], sizes[0]
        for i, dilation in enumerate(levels):
            y, history = conv(tf.nn.relu6(x), state, start, weights[f"res{i}.conv"], dilation)
            x = x + frame_norm(y, i)
            kept.append(history)
            start += sizes[i + 1]
        raw = x @ dense[0] + dense[1]
        f0_hz = tf.reshape(_midi_to_hz(f0_scaled * 127.0), [1, 1, 1])
        harmonic = model.harmonic.get_controls(raw[None, :, :1], raw[None, :, 1:1 + N_HARMONICS], f0_hz)
        noise = model.noise.get_controls(raw[None, :, 1 + N_HARMONICS:])
        new_state = tf.concat([*kept, tf.zeros([STATE_SIZE - used])], 0)
        return (tf.reshape(harmonic["amplitudes"], [1]), tf.reshape(harmonic["harmonic_distribution"], [N_HARMONICS]),
                tf.reshape(noise["magnitudes"], [N_NOISE_BANDS]), new_state)

    return call


def _midi_to_hz(midi):
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)  # ddsp.core.midi_to_hz, as its exporter inverts the scaling


def to_tflite(model) -> bytes:
    """The frame step as a TFLite flatbuffer of builtin ops, through a SavedModel whose
    signature `call` gives the plugin's tensor names."""
    import tensorflow as tf

    module = tf.Module()
    module.weights = {k: tf.Variable(v, trainable=False) for k, v in engine_weights(model).items() if k != "reverb.ir"}
    module.call = _frame_step(model, module.weights)
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(module, saved, signatures={"call": module.call.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


def metadata(statistics: DatasetStatistics, config: ModelConfig) -> dict:
    """What ddsp's exporter writes: the dataset's note ranges (the plugin reads the Hz and
    power ones, and `export_time` as the model's identity) and the model's shape."""
    low, high = statistics.pitch_note.mean_min, statistics.pitch_note.mean_max
    return {"mean_min_pitch_note": low, "mean_max_pitch_note": high,
            "mean_min_pitch_note_hz": float(_midi_to_hz(low)), "mean_max_pitch_note_hz": float(_midi_to_hz(high)),
            "mean_min_power_note": statistics.power_note.mean_min,
            "mean_max_power_note": statistics.power_note.mean_max,
            "version": f"nas {__version__}", "export_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "num_harmonics": config.n_harmonics, "num_noise_amps": config.n_noise_bands,
            "frame_rate": config.control_rate, "frame_size": 1024, "sample_rate": SAMPLE_RATE}


def with_metadata(flatbuffer: bytes, meta: dict) -> bytes:
    """The model's bytes with a zip holding metadata.json appended: zipfile in append mode
    writes the zip's offsets from the start of the file, as juce::ZipFile reads them."""
    buffer = io.BytesIO(flatbuffer)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("metadata.json", json.dumps(meta, indent=2))
    return buffer.getvalue()


@dataclass(frozen=True)
class VstExport:
    model: Path
    reverbs: tuple[Path, ...]
    history_floats: int
    bytes: int


def export(model, statistics: DatasetStatistics, sample_rate: int, out: Path, name: str) -> VstExport:
    """`out/<name>.tflite` and `out/<name>.reverb_ir_<rate>_hz.wav`; RuleError (and nothing
    written) for a model the plugin could not play."""
    import soundfile as sf

    from .rates import convert

    check_rule(model.config, sample_rate)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.tflite"
    flatbuffer = with_metadata(to_tflite(model), metadata(statistics, model.config))
    with atomic_path(target) as tmp:
        tmp.write_bytes(flatbuffer)
    ir = np.asarray(model.reverb._ir.numpy(), np.float32)
    reverbs = []
    for rate in REVERB_RATES:
        path = out / f"{name}.reverb_ir_{rate}_hz.wav"
        with atomic_path(path) as tmp:
            sf.write(tmp, convert(ir, SAMPLE_RATE, rate), rate, subtype="FLOAT", format="WAV")
        reverbs.append(path)
    return VstExport(target, tuple(reverbs), history_floats(model.config), target.stat().st_size)

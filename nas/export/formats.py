"""The trained decoder as ONNX (tf2onnx), TFLite, and int8 ONNX (ONNX Runtime static
quantisation calibrated on training examples).

Inputs: the scaled level (`ld_scaled` or `pw_scaled`, as the model's `level`) and
`f0_scaled`, each [1, frames, 1]; output [1, frames, 1 + harmonics + bands] (amplitude,
harmonic distribution, noise magnitudes before ddsp's scaling).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import tensorflow as tf

from nas import ddsp_api
from nas.atomic import atomic_path
from nas.constants import OPSET
from nas.engine.engine import input_roles
from nas.models.decoders import input_keys


@contextlib.contextmanager
def _convertible_normalize():
    """ddsp's Normalize adds an axis with `x[:, :, tf.newaxis, :]`, a StridedSlice the
    TFLite converter rejects; `tf.expand_dims` is the same operation in a form it accepts."""
    nn = ddsp_api.nn()
    original = nn.ensure_4d
    nn.ensure_4d = lambda x: tf.expand_dims(x, 2) if len(x.shape) == 3 else original(x)
    try:
        yield
    finally:
        nn.ensure_4d = original


def decoder_function(model, frames: int | None):
    """A tf.function of the decoder; trace it inside `_convertible_normalize()`."""
    names = input_keys(model.config)
    signature = [tf.TensorSpec([1, frames, 1], tf.float32, name=name) for name in names]

    @tf.function(input_signature=signature, autograph=False)  # as nas.training.data's
    def decode(level_scaled, f0_scaled):
        out = model.decoder(dict(zip(names, (level_scaled, f0_scaled))))
        return tf.concat([out["amps"], out["harmonic_distribution"], out["noise_magnitudes"]], axis=-1)

    return decode


def to_onnx(model, path: Path) -> None:
    """Any number of frames (the time axis is dynamic)."""
    import tf2onnx

    function = decoder_function(model, None)
    with _convertible_normalize():
        proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=OPSET)
    with atomic_path(path) as tmp:
        tmp.write_bytes(proto.SerializeToString())


def to_tflite(model, path: Path, frames: int) -> None:
    """A fixed number of frames (TFLite plans memory for static shapes)."""
    with _convertible_normalize():
        concrete = decoder_function(model, frames).get_concrete_function()
        # The converter saves what it is given as a SavedModel first: the decoder's variables
        # alone, since a Keras model would have every layer's call traced too (3.5 s).
        holder = tf.Module()
        holder.weights = list(model.decoder.variables)
        flatbuffer = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder).convert()
    with atomic_path(path) as tmp:
        tmp.write_bytes(flatbuffer)


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over (level, f0) pairs, scaled."""

    def __init__(self, names: tuple[str, str], examples: list[tuple[np.ndarray, np.ndarray]]):
        self.feeds = iter([{name: x[None, :, None] for name, x in zip(names, pair)} for pair in examples])

    def get_next(self):
        return next(self.feeds, None)


def quantize_int8(onnx_path: Path, path: Path, calibration: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Static int8 quantisation of the convolutions (QDQ, per-channel weights, MinMax
    activations); the Dense head and the normalisations stay float. On the demo's
    frame-normalised model, quantising the head too doubled the spectral loss (+92%), the
    convolutions alone cost +7.5% (docs/benchmarks.md, Defaults)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with atomic_path(path) as tmp:
        feeds = _Calibration(_onnx_inputs(onnx_path), calibration)
        quantize_static(str(onnx_path), str(tmp), feeds, quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=["Conv"])


def _onnx_inputs(path: Path) -> tuple[str, str]:
    import onnx

    return input_roles([i.name for i in onnx.load(str(path)).graph.input])


def run_tflite(path: Path, level_scaled: np.ndarray, f0_scaled: np.ndarray) -> np.ndarray:
    interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    details = {d["name"]: d["index"] for d in interpreter.get_input_details()}
    for name, value in zip(input_roles(list(details)), (level_scaled, f0_scaled)):
        interpreter.set_tensor(details[name], value[None, :, None].astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]

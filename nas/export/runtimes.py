"""An export in each runtime: its real-time factor on one thread, batch 1, for the decoder
alone and for the whole controls -> audio path, and what the runtime's decoder does to the
spectral loss.

| runtime | decoder |
|---|---|
| `nas-engine` | the engine's own Numba decoder (`engine.npz`) |
| `onnxruntime`, `onnxruntime-int8` | `decoder.onnx`, `decoder.int8.onnx` in ONNX Runtime |
| `litert` | `decoder.tflite` in LiteRT (`ai-edge-litert`, TensorFlow Lite's successor) |
| `openvino`, `openvino-int8` | the same two ONNX files compiled by OpenVINO for the CPU (it runs QDQ as int8) |
| `tvm` | `decoder.onnx` compiled by TVM's Relax for LLVM, untuned (no auto-scheduling) |

The whole path is the runtime's decoder followed by the engine's synthesis (harmonics,
filtered noise, reverb): the decoder is the only part the runtimes differ in.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas.constants import LEVELS
from nas.engine.engine import input_roles
from nas.store.artifacts import RuntimeFigures, RuntimeReport
from nas.store.names import DECODER_INT8, DECODER_ONNX, DECODER_TFLITE

RUNTIMES = ("nas-engine", "onnxruntime", "onnxruntime-int8", "litert", "openvino", "openvino-int8", "tvm")
SECONDS = 4.0  # of audio per call, as the thesis measured
MIN_RUNS = 5

Decoder = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (level, f0) scaled [frames] -> [frames, outputs]


def _litert(path: Path, frames: int) -> Decoder:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    indices = {d["name"]: d["index"] for d in interpreter.get_input_details()}
    inputs = [indices[name] for name in input_roles(list(indices))]
    for detail in interpreter.get_input_details():  # converted for the examples' length: others need a resize
        if list(detail["shape"]) != [1, frames, 1]:
            interpreter.resize_tensor_input(detail["index"], [1, frames, 1])
    interpreter.allocate_tensors()
    output = interpreter.get_output_details()[0]["index"]

    def decode(level_scaled, f0_scaled):
        for index, x in zip(inputs, (level_scaled, f0_scaled)):
            interpreter.set_tensor(index, x[None, :, None])
        interpreter.invoke()
        return interpreter.get_tensor(output)[0]

    return decode


def _openvino(path: Path, frames: int) -> Decoder:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    names = input_roles([port.get_any_name() for port in model.inputs])
    model.reshape({name: [1, frames, 1] for name in names})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY",
                                              "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    output = compiled.output(0)

    def decode(level_scaled, f0_scaled):
        return request.infer({name: x[None, :, None] for name, x in zip(names, (level_scaled, f0_scaled))})[output][0]

    return decode


def _tvm(path: Path, frames: int) -> Decoder:
    os.environ["TVM_NUM_THREADS"] = "1"  # read when TVM's thread pool starts
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    graph = onnx.load(str(path))
    order = [i.name for i in graph.graph.input]
    names = input_roles(order)
    module = from_onnx(graph, shape_dict={name: [1, frames, 1] for name in names})
    module = relax.get_pipeline("zero")(relax.transform.DecomposeOpsForInference()(module))
    machine = relax.VirtualMachine(relax.build(module, target="llvm"), tvm.cpu())

    def decode(level_scaled, f0_scaled):
        values = dict(zip(names, (level_scaled, f0_scaled)))
        feeds = [tvm.runtime.tensor(np.ascontiguousarray(values[name][None, :, None])) for name in order]
        return machine["main"](*feeds).numpy()[0]

    return decode


def load_decoder(runtime: str, export_dir: Path, frames: int) -> Decoder | None:
    """The export's decoder in `runtime`, for `frames` control frames (None: the engine's own)."""
    from nas.engine.engine import OnnxDecoder

    export_dir = Path(export_dir)
    onnx_file = export_dir / (DECODER_INT8 if runtime.endswith("-int8") else DECODER_ONNX)
    if runtime == "nas-engine":
        return None
    if runtime.startswith("onnxruntime"):
        return OnnxDecoder(onnx_file)
    if runtime == "litert":
        return _litert(export_dir / DECODER_TFLITE, frames)
    if runtime.startswith("openvino"):
        return _openvino(onnx_file, frames)
    if runtime == "tvm":
        return _tvm(onnx_file, frames)
    raise ValueError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")


def controls_of(examples: list[dict], frames: int, level: str = "loudness") -> tuple[np.ndarray, np.ndarray]:
    """`frames` of real f0 and level (the model's loudness or power): the examples' controls
    one after another."""
    f0 = np.concatenate([e["f0_hz"][:, 0] for e in examples])
    loudness = np.concatenate([e[LEVELS[level][0]][:, 0] for e in examples])
    if len(f0) < frames:
        raise ValueError(f"{len(examples)} examples hold {len(f0)} control frames, fewer than {frames}")
    return f0[:frames].astype(np.float32), loudness[:frames].astype(np.float32)


@dataclass
class _Timings:
    """One runtime's call times (s), or why it could not run."""
    decoder: list[float] = field(default_factory=list)
    path: list[float] = field(default_factory=list)
    error: str | None = None


def measure(export_dir: Path, model_version: str, examples: list[dict], runtimes: tuple[str, ...] = RUNTIMES,
            budget_s: float = 10.0, spectral_loss: Callable | None = None) -> RuntimeReport:
    """Time every runtime on `SECONDS` of the examples' controls, in interleaved rounds for
    `budget_s` (at least MIN_RUNS each), and take medians: a busy machine slows all alike.
    `spectral_loss(engine, examples)` scores each whole path on the examples (the engines'
    noise seeded alike), so each runtime's change of the loss is beside its speed."""
    from nas.engine.engine import Engine, scale_inputs

    reference = Engine.load(export_dir)
    frames = int(SECONDS * reference.control_rate)
    f0, loudness = controls_of(examples, frames, reference.level)
    timings = {runtime: _Timings() for runtime in runtimes}
    calls: dict[str, tuple[Callable, Callable]] = {}
    decoders: dict[str, Decoder | None] = {}
    for runtime in runtimes:
        try:
            decoders[runtime] = decoder = load_decoder(runtime, export_dir, frames)
            engine = Engine.load(export_dir, decoder=decoder or "numpy")
            scaled = scale_inputs(f0, loudness)
            engine.decoder(*scaled)  # compile, plan, warm caches
            engine.render(f0, loudness)
            calls[runtime] = (lambda e=engine, s=scaled: e.decoder(*s), lambda e=engine: e.render(f0, loudness))
        except Exception as error:  # a runtime that cannot load or compile this model is reported, not fatal
            timings[runtime].error = f"{type(error).__name__}: {error}"
    deadline = time.perf_counter() + budget_s
    while calls and (time.perf_counter() < deadline or min(len(timings[r].path) for r in calls) < MIN_RUNS):
        for runtime, (decode, render) in calls.items():
            for part, call in ((timings[runtime].decoder, decode), (timings[runtime].path, render)):
                start = time.perf_counter()
                call()
                part.append(time.perf_counter() - start)
    losses = {}
    if spectral_loss is not None:
        length = len(examples[0]["f0_hz"])
        for runtime in calls:  # fixed-shape runtimes (LiteRT, OpenVINO, TVM) are built again for another length
            decoder = decoders[runtime] if length == frames else load_decoder(runtime, export_dir, length)
            losses[runtime] = spectral_loss(Engine.load(export_dir, decoder=decoder or "numpy", seed=1), examples)
    base = losses.get("nas-engine")
    rows = []
    for runtime in runtimes:
        times = timings[runtime]
        if times.error:
            rows.append(RuntimeFigures(runtime=runtime, error=times.error))
            continue
        decoder_s, path_s = statistics.median(times.decoder), statistics.median(times.path)
        loss = losses.get(runtime)
        rows.append(RuntimeFigures(
            runtime=runtime, decoder_ms=1e3 * decoder_s, path_ms=1e3 * path_s, decoder_rtf=SECONDS / decoder_s,
            path_rtf=SECONDS / path_s, runs=len(times.path), spectral_loss=loss,
            loss_change_pct=None if loss is None or not base else 100 * (loss / base - 1)))
    return RuntimeReport(model_version=model_version, seconds=SECONDS, examples=len(examples), runtimes=rows)

"""Real-time factor on one CPU thread, batch 1, 4 s of audio: nas' CPU engine vs the same
model run by TensorFlow eagerly and as a tf.function, for the decoder alone and for the
whole controls-to-audio path (decoder -> harmonic + filtered noise -> reverb).

    .venv/bin/python benchmarks/realtime.py [--presets cnn-tiny cnn full] [--seconds 20]

Controls are real: f0 of the bundled demo violin (its MIDI ground truth) and its
loudness. Weights are the preset's initial ones, perturbed (speed does not depend on
training). Variants run interleaved in rounds; medians of all runs are reported.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before NumPy, BLAS and TensorFlow start
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks/results"
SECONDS = 4.0


def demo_controls(frames: int, control_rate: int) -> tuple[np.ndarray, np.ndarray]:
    import soundfile as sf

    from nas.data.loudness import compute_loudness

    audio, rate = sf.read(REPO / "data/demo-violin/audio/violin-00.flac", dtype="float32")
    truth = np.loadtxt(REPO / "data/demo-violin/f0/violin-00.csv", delimiter=",", skiprows=1)
    times = np.arange(frames) / control_rate
    f0 = np.interp(times, truth[:, 0], np.where(truth[:, 1] > 0, truth[:, 1], np.nan))
    f0 = np.nan_to_num(f0, nan=float(np.nanmedian(truth[:, 1])))
    from nas.resample import resample

    loudness = compute_loudness(resample(audio, rate, 16000), 16000, control_rate)[:frames]
    return f0.astype(np.float32), loudness.astype(np.float32)


def variants(preset: str):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from nas.config.presets import PRESETS
    from nas.engine.engine import Engine, OnnxDecoder, scale_inputs
    from nas.export import formats
    from nas.export.weights import engine_weights
    from nas.models.synthesizer import Synthesizer, control_steps

    config = PRESETS[preset]
    model = Synthesizer(config, 16000, SECONDS)
    model.build_variables()
    generator = tf.random.Generator.from_seed(0)
    for variable in model.trainable_variables:
        variable.assign_add(generator.normal(variable.shape, stddev=0.02))
    frames = control_steps(config, SECONDS)
    f0, loudness = demo_controls(frames, config.control_rate)
    ld_scaled, f0_scaled = scale_inputs(f0, loudness)
    features = {"f0_hz": tf.constant(f0[None, :, None]), "ld_scaled": tf.constant(ld_scaled[None, :, None]),
                "f0_scaled": tf.constant(f0_scaled[None, :, None])}
    engine = Engine({"model": config.model_dump(mode="json"), "sample_rate": 16000}, engine_weights(model))
    onnx_path = Path(tempfile.mkdtemp()) / "decoder.onnx"
    formats.to_onnx(model, onnx_path)
    onnx = OnnxDecoder(onnx_path)
    decoder_fn = tf.function(lambda x: model.decoder(x))
    model_fn = tf.function(lambda x: model(x)["audio_synth"])
    decoder_inputs = {k: features[k] for k in ("ld_scaled", "f0_scaled")}
    return {
        ("decoder", "nas engine (NumPy)"): lambda: engine.decoder(ld_scaled, f0_scaled),
        ("decoder", "ONNX Runtime (exported)"): lambda: onnx(ld_scaled, f0_scaled),
        ("decoder", "TensorFlow eager"): lambda: model.decoder(decoder_inputs),
        ("decoder", "TensorFlow tf.function"): lambda: decoder_fn(decoder_inputs),
        ("controls->audio", "nas engine"): lambda: engine.render(f0, loudness),
        ("controls->audio", "TensorFlow eager"): lambda: model(features)["audio_synth"].numpy(),
        ("controls->audio", "TensorFlow tf.function"): lambda: model_fn(features).numpy(),
    }, engine, (f0, loudness)


def measure(preset: str, budget_s: float) -> dict:
    runs, engine, (f0, loudness) = variants(preset)
    times: dict = {key: [] for key in runs}
    for fn in runs.values():  # warm up: compile, trace, caches
        for _ in range(3):
            fn()
    deadline = time.perf_counter() + budget_s
    while time.perf_counter() < deadline or min(len(v) for v in times.values()) < 5:
        for key, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    breakdown: dict = {}
    raw = engine.decode(f0, loudness)
    for _ in range(50):
        engine.synthesize(raw, f0, timings=breakdown)
    rows = [{"preset": preset, "path": path, "runner": runner, "runs": len(v), "median_ms": 1e3 * statistics.median(v),
             "realtime_factor": SECONDS / statistics.median(v)} for (path, runner), v in times.items()]
    return {"rows": rows, "engine_synth_ms": {k: 1e3 * v / 50 for k, v in breakdown.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cnn-tiny", "cnn", "full"])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per preset")
    args = parser.parse_args()
    results = {"seconds_of_audio": SECONDS, "threads": 1, "batch": 1, "presets": {}}
    for preset in args.presets:
        results["presets"][preset] = measure(preset, args.seconds)
        for row in results["presets"][preset]["rows"]:
            print(f"{preset:9s} {row['path']:16s} {row['runner']:26s} {row['median_ms']:9.2f} ms  "
                  f"{row['realtime_factor']:8.0f}x real time  ({row['runs']} runs)", flush=True)
        print(f"{preset:9s} engine synth breakdown (ms): "
              + ", ".join(f"{k} {v:.2f}" for k, v in results["presets"][preset]["engine_synth_ms"].items()), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "realtime.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

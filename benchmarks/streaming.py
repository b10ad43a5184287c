"""Playing live, on one core: the streaming engine against the offline engine, per-block
costs, the offline engine's speed (the median of 20 renders of 4 s a round, by stage),
the live chain, its latency and what a shorter lookahead costs in pitch accuracy, and
minutes of `nas play` on JACK's dummy driver, in turns with minutes of a client that only
writes silence (the xruns the machine makes without any of our work).

    .venv/bin/python benchmarks/streaming.py --run <data root>/demo-violin/runs/<run> [--repeats 5]

The model is a trained run's export (the demo's: `make demo`); it must stream (norm
`frame`). Controls are real: the demo violin's MIDI f0 and its loudness. Block timings
are each block's own wall time, in rounds; medians of the rounds' percentiles.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before NumPy, BLAS and TensorFlow start
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from record import save  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
BLOCKS = (32, 64, 128, 256, 1000, 4096)


def demo_controls(frames: int, control_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The demo violin's exact f0 (its MIDI, held through rests) and its loudness."""
    from nas.data.loudness import compute_loudness
    from nas.resample import resample
    from tests.conftest import demo_audio, demo_truth

    audio, rate = demo_audio()
    truth = demo_truth()
    f0 = np.interp(np.arange(frames) / control_rate, truth[:, 0], np.where(truth[:, 1] > 0, truth[:, 1], np.nan))
    f0 = np.nan_to_num(f0, nan=float(np.nanmedian(truth[:, 1])))
    loudness = compute_loudness(resample(audio, rate, 16000), 16000, control_rate)[:frames]
    return f0.astype(np.float32), loudness.astype(np.float32)


def tracker_seconds(audio, control_rate: int, network=None) -> float:
    """The live features (loudness, CREPE tiny every 4th frame) per second of audio, blocks
    of 256; `network` replaces the live chain's ONNX Runtime CREPE (the reference)."""
    from nas.play.live import LiveFeatures

    tracker = LiveFeatures(control_rate)
    if network is not None:
        tracker.network = network
    tracker.feed(audio[:4096])  # warm
    clock = time.perf_counter()
    for i in range(0, len(audio), 256):
        tracker.feed(audio[i:i + 256])
    return (time.perf_counter() - clock) / (len(audio) / 16000)


def parity(engine, f0, loudness) -> dict:
    """Each engine with the model's own noise sequence."""
    from nas.engine.stream import StreamingEngine

    offline = engine.render(f0, loudness)
    peak = float(np.abs(offline).max())
    sizes = {str(b): b for b in BLOCKS} | {"random 32-4096": np.random.default_rng(1).integers(32, 4097, 100)}
    return {name: float(np.abs(StreamingEngine(engine).render(f0, loudness, size) - offline).max() / peak)
            for name, size in sizes.items()}


def block_costs(engine, f0, loudness, block: int) -> np.ndarray:
    """Seconds per block of the streaming engine (decoder + synth), controls pushed as they are needed."""
    from nas.engine.stream import StreamingEngine

    stream = StreamingEngine(engine)
    out = np.zeros(block, np.float32)
    costs, fed, written = [], 0, 0
    total = len(f0) * engine.hop
    while written + block <= total:
        needed = min(len(f0), -(-(written + block) // engine.hop) + stream.lookahead_frames)
        clock = time.perf_counter()
        if needed > fed:
            stream.push(f0[fed:needed], loudness[fed:needed])
            fed = needed
        stream.pull(out)
        costs.append(time.perf_counter() - clock)
        written += block
    return np.asarray(costs[10:])  # past the first blocks' warm-up


def stage_shares(engine, f0, loudness) -> dict:
    """Seconds per second of audio of each stage of the streaming engine, each kernel run
    alone over the same frames (features: the live tracker and loudness, per second)."""
    import numba

    from nas.engine import stream as s

    stream = s.StreamingEngine(engine)
    dec, syn, rev = stream._dec, stream._syn, stream._rev
    frames = len(f0)
    hop = engine.hop

    @numba.njit
    def decode_all(dec, x_in_all):
        (_, _, input_conv, in_ring, kernels, scales, shifts, dilations, rings, out_norm, dense, bias, x_in, x, y,
         raw) = dec
        for n in range(x_in_all.shape[0]):
            x_in[0], x_in[1] = x_in_all[n, 0], x_in_all[n, 1]
            s._decode_frame(x_in, n, input_conv, in_ring, kernels, scales, shifts, dilations, rings, out_norm, dense,
                            bias, x, y, raw)

    @numba.njit
    def harmonics_all(f0, amps, sample_rate, fall, rise, scratch, out):
        phase = 0.0
        hop = fall.shape[0]
        for n in range(f0.shape[0] - 1):
            phase = s.harmonic_frame(f0[n], f0[n + 1], amps[n], amps[n + 1], sample_rate, fall, rise, phase, scratch,
                                     out[n * hop:(n + 1) * hop])

    @numba.njit
    def noise_all(magnitudes, impulses, noise, fir, crop, ring):
        hop = noise.shape[0] // magnitudes.shape[0]
        for n in range(magnitudes.shape[0]):
            s._add_noise(magnitudes[n], impulses, noise[n * hop:(n + 1) * hop], fir, n * hop, crop, ring)

    @numba.njit
    def reverb_all(dry, previous, spectra, delay_line, buffer, accumulator, twiddles, bitrev, chunk, wet):
        part = chunk.shape[0]
        for j in range(dry.shape[0] // part):
            chunk[:] = dry[j * part:(j + 1) * part]
            s._reverb_chunk(chunk, previous, spectra, delay_line, j, buffer, accumulator, twiddles, bitrev, wet)

    from nas.engine.engine import scale_inputs
    from nas.engine.synth import harmonic_controls

    ld, f0s = scale_inputs(f0, loudness)
    x_in = np.stack([(ld - dec[0][0]) / dec[1][0], (f0s - dec[0][1]) / dec[1][1]], axis=1).astype(np.float32)
    raw = engine.decode(f0, loudness)
    amps = harmonic_controls(raw.amps, raw.harmonic_distribution, f0, engine.sample_rate)
    magnitudes = np.ascontiguousarray(raw.noise_magnitudes, np.float32)
    noise = np.random.default_rng(0).uniform(-1, 1, frames * hop).astype(np.float32)
    out = np.zeros(frames * hop, np.float32)
    calls = {
        "decoder": lambda: decode_all(dec, x_in),
        "harmonics": lambda: harmonics_all(f0.astype(np.float64), amps, float(engine.sample_rate), syn[7], syn[8],
                                           syn[9], out),
        "noise": lambda: noise_all(magnitudes, syn[3], noise, syn[4], stream._params[3], syn[6]),
        "reverb": lambda: reverb_all(out.astype(np.float64), *rev[2:3], rev[0], rev[1], *rev[3:]),
    }
    seconds = frames * hop / engine.sample_rate
    result = {}
    for name, call in calls.items():
        call()  # compile
        runs = []
        for _ in range(5):
            clock = time.perf_counter()
            call()
            runs.append(time.perf_counter() - clock)
        result[name] = float(np.median(runs)) / seconds
    return result


def offline_round(engine, f0, loudness, renders: int = 20) -> tuple[float, dict]:
    """The offline engine on 4 s of controls, `renders` times in a row: the median render's
    seconds, and the median time of each of its stages (`Engine.synthesize`'s timings)."""
    from nas.engine.engine import SynthTimings

    f0, loudness = f0[:1000], loudness[:1000]
    totals, stages = [], {"decoder": [], "harmonic": [], "noise": [], "reverb": []}
    for _ in range(renders):
        timings = SynthTimings()
        clock = time.perf_counter()
        raw = engine.decode(f0, loudness)
        decoded = time.perf_counter()
        engine.synthesize(raw, f0, timings=timings)
        totals.append(time.perf_counter() - clock)
        for name, value in (asdict(timings) | {"decoder": decoded - clock}).items():
            stages[name].append(value)
    return float(np.median(totals)), {name: float(np.median(values)) for name, values in stages.items()}


def live_chain(engine, statistics, audio, block: int, lookahead: int) -> dict:
    from nas.play.live import LiveTransfer

    live = LiveTransfer(engine, statistics, block, lookahead, rate=16000)
    out = np.zeros(block, np.float32)
    costs, late = [], 0
    for start in range(0, len(audio) - block, block):
        clock = time.perf_counter()
        late += live.process(audio[start:start + block], out)
        costs.append(time.perf_counter() - clock)
    costs = np.asarray(costs[20:])
    return {"p50": float(np.percentile(costs, 50)), "p99": float(np.percentile(costs, 99)), "max": float(costs.max()),
            "late_samples": late, "latency_samples": live.latency, "delay_samples": live.delay}


def lookahead_accuracy(audio, lookaheads=(512, 256, 128, 0)) -> dict:
    """Live CREPE tiny (every 4th frame, held) against the offline features' tracker
    (CREPE tiny, centred, every frame, no Viterbi) on voiced frames: RPA (50 cents) and median cents."""
    from nas.data.loudness import compute_loudness
    from nas.play.live import LiveFeatures
    from nas.pitch.tracker import track_pitch

    offline = track_pitch(audio, 64, "tiny", viterbi=False, center=True, silent_peak=0)
    loud = compute_loudness(audio, 16000, 250, centered=True) > -45
    result = {}
    for lookahead in lookaheads:
        features = LiveFeatures(250, lookahead)
        f0 = np.concatenate([features.feed(audio[i:i + 256])[0] for i in range(0, len(audio), 256)])
        n = len(f0)
        voiced = loud[:n] & (offline.confidence[:n] > 0.85)
        cents = np.abs(1200 * np.log2(f0[voiced] / offline.f0_hz[:n][voiced]))
        result[str(lookahead)] = {"rpa": float(np.mean(cents < 50)), "median_cents": float(np.median(cents))}
    return result


# A JACK client that only writes silence: the xruns the machine makes without our work.
NULL_CLIENT = """
import sys, time, sounddevice as sd
xruns = 0
def on_block(outdata, frames, clock, status):
    global xruns
    xruns += bool(status.output_underflow or status.output_overflow)
    outdata[:] = 0
with sd.OutputStream(samplerate=int(sys.argv[2]), blocksize=128, channels=1, dtype="float32", callback=on_block):
    time.sleep(float(sys.argv[1]))
print(xruns)
"""


@contextlib.contextmanager
def _jack_server(name: str, rate: int = 16000):
    """A JACK dummy server of its own for the block: yields the environment its clients use."""
    server = subprocess.Popen(["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r", str(rate), "-p", "128"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    try:
        yield {**os.environ, "JACK_DEFAULT_SERVER": name}
    finally:
        server.terminate()
        server.wait()


def null_client_minute(seconds: float, rate: int = 16000) -> int | None:
    """Xruns of a client that does nothing, on its own JACK dummy server for `seconds`."""
    with _jack_server(f"nas-null-{os.getpid()}", rate) as env:
        done = subprocess.run([sys.executable, "-c", NULL_CLIENT, str(seconds), str(rate)], capture_output=True,
                              text=True, env=env)
    return int(done.stdout) if done.stdout.strip().isdigit() else None


def jack_minute(run: Path, seconds: float, rate: int = 16000) -> dict:
    """`nas play` of the demo violin (its own 32 kHz file, converted to the device's rate) on
    a JACK dummy server at `rate`, blocks of 128, the default lead: its xruns, late samples
    and longest block."""
    if not shutil.which("jackd"):
        return {"skipped": "no jackd"}
    import soundfile as sf

    from tests.conftest import demo_audio

    audio, own = demo_audio()
    with tempfile.TemporaryDirectory() as tmp, _jack_server(f"nas-bench-{os.getpid()}", rate) as env:
        source = Path(tmp) / "in.wav"
        sf.write(source, np.tile(audio, int(np.ceil(seconds * own / len(audio))))[:int(seconds * own)], own)
        done = subprocess.run([sys.executable, "-m", "flows.cli", "play", str(run), "--input-file", str(source),
                               "--block", "128"], cwd=REPO, capture_output=True, text=True, env=env)
    line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    found = re.search(r"(\d+) xruns, (\d+) samples late.* \(([\d.]+) ms at most\)", line)
    if not found:
        return {"line": line, "xruns": None}
    return {"line": line, "xruns": int(found[1]), "late_blocks": int(found[2]) // 128,
            "longest_block_ms": float(found[3])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a trained, exported run that streams")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jack-seconds", type=float, default=60.0)
    parser.add_argument("--jack-rounds", type=int, default=3, help="minutes of play and of a null client, in turns")
    parser.add_argument("--out", default="streaming")
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from nas.resample import resample
    from nas.store.datasets import load_statistics
    from nas.play.model import load_engine, run_paths
    from tests.conftest import demo_audio

    run, dataset_dir = run_paths(args.run)
    engine = load_engine(run)
    statistics = load_statistics(dataset_dir)
    f0, loudness = demo_controls(int(20 * engine.control_rate), engine.control_rate)
    audio, rate = demo_audio()
    audio = resample(audio, rate, 16000)[:20 * 16000]
    result = {"date": time.strftime("%Y-%m-%d"), "run": run.name, "parity_of_peak": parity(engine, f0, loudness)}
    print("parity:", result["parity_of_peak"], flush=True)
    rounds = {"engine_128": [], "chain_256": [], "offline_x_real_time": [], "offline_stages": []}
    for _ in range(args.repeats):
        costs = block_costs(engine, f0, loudness, 128)
        rounds["engine_128"].append([float(np.percentile(costs, 99)), float(costs.max()), float(np.median(costs))])
        chain = live_chain(engine, statistics, audio, 256, 512)
        rounds["chain_256"].append([chain["p99"], chain["max"], chain["p50"]])
        seconds, stages = offline_round(engine, f0, loudness)
        rounds["offline_x_real_time"].append(4.0 / seconds)
        rounds["offline_stages"].append(stages)
    block_s = {"engine_128": 128 / 16000, "chain_256": 256 / 16000}
    for key in block_s:
        p99, worst, p50 = np.median(np.asarray(rounds[key]), axis=0)
        result[key] = {"p50_pct_of_block": 100 * p50 / block_s[key], "p99_pct_of_block": 100 * p99 / block_s[key],
                       "max_pct_of_block": 100 * worst / block_s[key]}
        print(key, result[key], flush=True)
    result["offline_x_real_time"] = float(np.median(rounds["offline_x_real_time"]))
    result["offline_x_real_time_per_round"] = rounds["offline_x_real_time"]
    result["offline_ms_per_4s_by_stage"] = {name: 1e3 * float(np.median([r[name] for r in rounds["offline_stages"]]))
                                            for name in rounds["offline_stages"][0]}
    print("offline:", round(result["offline_x_real_time"]), "x real time; ms per 4 s by stage:",
          {k: round(v, 3) for k, v in result["offline_ms_per_4s_by_stage"].items()}, flush=True)
    result["live_chain"] = chain
    result["stage_seconds_per_second"] = stage_shares(engine, f0, loudness)
    from nas.pitch.network import load_network

    tensorflow_crepe = load_network("tiny")
    features = {"onnxruntime": [], "tensorflow": []}  # interleaved rounds
    for _ in range(args.repeats):
        features["onnxruntime"].append(tracker_seconds(audio, engine.control_rate))
        features["tensorflow"].append(tracker_seconds(audio, engine.control_rate,
                                                      lambda frames: tensorflow_crepe(frames).numpy()))
    result["stage_seconds_per_second"]["features"] = float(np.median(features["onnxruntime"]))
    result["features_tensorflow_seconds_per_second"] = float(np.median(features["tensorflow"]))
    print("stages:", result["stage_seconds_per_second"], flush=True)
    print("features with TensorFlow's CREPE (the reference):", result["features_tensorflow_seconds_per_second"])
    result["lookahead"] = lookahead_accuracy(audio)
    print("lookahead:", result["lookahead"], flush=True)
    # nas play and a client that does nothing, in turns: how many xruns are the machine's own
    result["jack"] = jack_minute(run, args.jack_seconds)
    print("jack:", result["jack"], flush=True)
    if "skipped" not in result["jack"]:
        plays, nulls = [result["jack"]["xruns"]], []
        for round_ in range(args.jack_rounds):
            nulls.append(null_client_minute(args.jack_seconds))
            if round_ + 1 < args.jack_rounds:
                plays.append(jack_minute(run, args.jack_seconds)["xruns"])
        result["jack"] |= {"play_xruns_per_round": plays, "null_client_xruns_per_round": nulls}
        print("jack, play and a null client in turns:", plays, nulls, flush=True)
    save(args.out, result)


if __name__ == "__main__":
    main()

"""Pitch trackers side by side: accuracy on the demos' exact f0, and end-to-end preparation speed.

    .venv/bin/python benchmarks/pitch.py [--accuracy] [--speed] [--repeats 2] [--minutes 1 10]

Accuracy: SwiftF0 and CREPE tiny / small / full, each with and without Viterbi, on the
demo violin and flute (6 x 32 s each), at the datasets' grid (50 frames/s, centred),
through the functions `prepare` calls. Scored against the renders' exact f0 every 10 ms:
RPA (share within 50 cents) on steady voiced frames (more than 40 ms from a note
boundary) and on all voiced frames, and the median cents error of voiced frames. The
rendered audio lags its MIDI truth: every tracker scores best with the truth shifted
later by the same few tens of ms. The lag is found once per instrument, as the shift that
maximises CREPE-full + Viterbi's steady RPA, and all trackers are scored at it (and at 0).
Network-only speed is each tracker's own time on those files.

Speed: `prepare` of one file (the demo violin tiled to length, 32 kHz FLAC) in a fresh
process into an empty data root, DirectRunner in its default multi_processing mode:
wall time, x real time, peak RSS (summed over the process tree) and each stage's time
(`prepare`'s stages, plus the imports), trackers interleaved, medians of `--repeats`; beside them
the `--reference-tracker`s (default CREPE tiny) with the code of `--reference` (default: before
SwiftF0, the silence skip and TensorFlow-free shards). Two lengths give the fixed cost per run (the
intercept) and the marginal speed.
Results: benchmarks/results/<--out>.json (default pitch.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from prepare_memory import long_file
from prepare_vs_ddsp import REPO, measured, reference_tree
from record import load_data, save

sys.path.insert(0, str(REPO))

INSTRUMENTS = ("violin", "flute")
FRAME_RATE = 50
CAPACITIES = ("tiny", "small", "full")
LAGS_MS = tuple(range(0, 65, 5))
STEADY_S = 0.04

CHILD = """
import json, sys, time
start = time.perf_counter()
from pathlib import Path
from nas.config import DatasetConfig
from nas.data.prepare import prepare_dataset
seconds = {"imports": time.perf_counter() - start}
assert Path(sys.argv[5]).resolve() in Path(__import__("nas").__file__).resolve().parents, "wrong nas imported"
def timed(stage, *args):
    begin = time.perf_counter()
    out = stage.run(*args)
    seconds[stage.name] = time.perf_counter() - begin
    return out
method, capacity = sys.argv[3].split(":")
choice = {"pitch": {"method": method}} if method != "crepe" else {}  # code from before the choice has no `pitch`
config = DatasetConfig(name="long", audio=[sys.argv[1]], crepe={"capacity": capacity or "full", "viterbi": True},
                       **choice)
prepare_dataset(config, Path("/"), Path(sys.argv[2]), run=timed)
Path(sys.argv[4]).write_text(json.dumps(seconds))
"""

NETWORK_CHILD = """
import json, sys, time
from pathlib import Path
from nas.data.audio import read_segment
from nas.pitch.onnx_network import load_onnx_network
from nas.pitch.tracker import tracked_activations
capacity, seconds = sys.argv[2], float(sys.argv[3])
audio = read_segment(Path(sys.argv[1]), 0.0, seconds, 16000)
load_onnx_network(capacity)
tracked_activations(audio[:16000], 320, capacity)  # built and warm: only the network's steady speed is timed
start = time.perf_counter()
tracked_activations(audio, 320, capacity)
Path(sys.argv[4]).write_text(json.dumps({"x_real_time": len(audio) / 16000 / (time.perf_counter() - start)}))
"""

def tracks(audio_16k: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """f0 per tracker on the centred 50 frames/s grid, as `prepare` computes it (silence
    skipped), and each network's seconds."""
    from nas.data.features import frame_count
    from nas.pitch import hop_for_frame_rate
    from nas.pitch.swift import track_swift
    from nas.pitch.tracker import decode_track, tracked_activations

    n = frame_count(len(audio_16k), FRAME_RATE, True)
    out, seconds = {}, {}
    start = time.perf_counter()
    out["swiftf0"] = track_swift(audio_16k, np.arange(n) / FRAME_RATE)[0]
    seconds["swiftf0"] = time.perf_counter() - start
    for capacity in CAPACITIES:
        start = time.perf_counter()
        activation, tracked = tracked_activations(audio_16k, hop_for_frame_rate(FRAME_RATE), capacity)
        seconds[f"crepe-{capacity}"] = time.perf_counter() - start
        for viterbi in (False, True):
            out[f"crepe-{capacity}{'+viterbi' if viterbi else ''}"] = decode_track(activation, tracked, viterbi).f0_hz[:n]
    return out, seconds


def scores(f0: np.ndarray, truth: np.ndarray, lag_s: float) -> dict[str, np.ndarray]:
    """Per truth frame (10 ms): cents error where voiced, and the steady mask."""
    times = np.arange(len(f0)) / FRAME_RATE
    t = truth[:, 0] + lag_s
    inside = t <= times[-1]
    estimate = np.exp(np.interp(t[inside], times, np.log(f0)))
    voiced = truth[inside, 1] > 0
    cents = np.abs(1200 * np.log2(estimate[voiced] / truth[inside, 1][voiced]))
    return {"cents": cents, "steady": truth[inside, 2][voiced] > STEADY_S}


def summary(parts: list[dict]) -> dict[str, float]:
    cents = np.concatenate([p["cents"] for p in parts])
    steady = np.concatenate([p["steady"] for p in parts])
    return {"rpa_steady": float(np.mean(cents[steady] < 50)), "rpa_voiced": float(np.mean(cents < 50)),
            "median_cents_voiced": float(np.median(cents))}


def accuracy() -> dict:
    from nas.data.audio import read_mono
    from nas.resample import resample

    report = {}
    for instrument in INSTRUMENTS:
        folder = REPO / f"data/demo-{instrument}"
        files, audio_s, seconds = [], 0.0, {}
        for path in sorted((folder / "audio").glob("*.flac")):
            audio, rate, _ = read_mono(path)
            audio_16k = resample(audio, rate, 16000)
            audio_s += len(audio_16k) / 16000
            f0s, spent = tracks(audio_16k)
            for name, s in spent.items():
                seconds[name] = seconds.get(name, 0.0) + s
            truth = np.loadtxt(folder / "f0" / f"{path.stem}.csv", delimiter=",", skiprows=1)
            files.append((f0s, truth))
            print(f"{instrument} {path.name}: tracked", flush=True)
        reference = "crepe-full+viterbi"
        lag_ms = max(LAGS_MS, key=lambda ms: summary([scores(f[reference], t, ms / 1000) for f, t in files])
                     ["rpa_steady"])
        trackers = {}
        for name in files[0][0]:
            trackers[name] = {
                "at_lag": summary([scores(f[name], t, lag_ms / 1000) for f, t in files]),
                "at_0": summary([scores(f[name], t, 0.0) for f, t in files]),
            }
            network = name.removesuffix("+viterbi")
            trackers[name]["network_x_real_time"] = audio_s / seconds[network]
            print(f"{instrument} {name}: {trackers[name]}", flush=True)
        report[instrument] = {"audio_s": audio_s, "lag_ms": lag_ms, "trackers": trackers}
    return report


TRACKERS = {"swiftf0": "swiftf0:", "crepe-tiny+viterbi": "crepe:tiny", "crepe-full+viterbi": "crepe:full"}


def speed(minutes: list[int], repeats: int, ours: list[str], reference: str | None, reference_trackers: list[str],
          network_s: float) -> dict:
    """`reference`: a commit whose runs of `reference_trackers` are measured beside ours (a git worktree).
    Each CREPE tracker of ours also runs its network alone on the first `network_s` of the
    longest file, in a fresh process after a warm-up, beside the end-to-end runs."""
    trackers = {name: (TRACKERS[name], REPO) for name in ours}
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="nas-pitch-") as work, ExitStack() as stack:
        work = Path(work)
        if reference:
            tree = stack.enter_context(reference_tree(reference, work / "reference"))
            for name in reference_trackers:
                trackers[f"{name}@{reference}"] = (TRACKERS[name], tree)
        for repeat in range(repeats):
            for length in minutes:
                audio = long_file(length, work)
                for name, (spec, tree) in trackers.items():
                    out = work / "out"
                    shutil.rmtree(out, ignore_errors=True)
                    stages = work / "stages.json"
                    result = measured([sys.executable, "-c", CHILD, str(audio), str(out), spec, str(stages),
                                       str(tree)], cwd=tree)
                    result["stages_s"] = json.loads(stages.read_text())
                    runs.setdefault(f"{name}/{length}min", []).append(result)
                    print(f"[{repeat + 1}/{repeats}] {name}, {length} min: {result['wall_s']:.1f} s "
                          f"({length * 60 / result['wall_s']:.1f}x real time), peak {result['peak_rss_gb']:.2f} GB; "
                          + ", ".join(f"{k} {v:.1f} s" for k, v in result["stages_s"].items()), flush=True)
            for name in (n for n in ours if n.startswith("crepe")):
                out = work / "network.json"
                subprocess.run([sys.executable, "-c", NETWORK_CHILD, str(long_file(max(minutes), work)),
                                TRACKERS[name].split(":")[1], str(network_s), str(out)], check=True, cwd=REPO)
                x = json.loads(out.read_text())["x_real_time"]
                runs.setdefault(f"{name}/network", []).append({"x_real_time": x})
                print(f"[{repeat + 1}/{repeats}] {name}, network alone on {network_s:.0f} s: {x:.2f}x real time",
                      flush=True)
    median = {}
    for key, values in runs.items():
        name, length = key.split("/")
        if length == "network":
            median[key] = {"x_real_time": float(np.median([r["x_real_time"] for r in values]))}
            continue
        wall = float(np.median([r["wall_s"] for r in values]))
        median[key] = {"wall_s": wall, "x_real_time": int(length.removesuffix("min")) * 60 / wall,
                       "peak_rss_gb": float(np.median([r["peak_rss_gb"] for r in values])),
                       "stages_s": {k: float(np.median([r["stages_s"][k] for r in values]))
                                    for k in values[0]["stages_s"]}}
    fixed = {}
    if len(minutes) >= 2:
        short, long_ = min(minutes), max(minutes)
        for name in trackers:
            if f"{name}/{short}min" not in median:
                continue
            a, b = median[f"{name}/{short}min"]["wall_s"], median[f"{name}/{long_}min"]["wall_s"]
            per_audio_s = (b - a) / ((long_ - short) * 60)
            fixed[name] = {"fixed_s": a - per_audio_s * short * 60, "x_real_time_marginal": 1 / per_audio_s}
    return {"repeats": repeats, "reference": reference, "runs": runs, "median": median, "fixed_cost": fixed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--minutes", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--trackers", nargs="+", choices=sorted(TRACKERS), default=["swiftf0", "crepe-tiny+viterbi"])
    parser.add_argument("--network-seconds", type=float, default=60.0,
                        help="audio for the CREPE networks' own speed, beside the end-to-end runs")
    parser.add_argument("--reference", default="cf55c7d", help="commit of the code before SwiftF0 and the silence "
                                                             "skip, measured beside (CREPE tiny); '' for none")
    parser.add_argument("--reference-tracker", action="append", choices=sorted(TRACKERS),
                        help="a tracker run with the reference's code (default: crepe-tiny+viterbi); repeatable")
    parser.add_argument("--out", default="pitch", help="results file name in benchmarks/results/")
    args = parser.parse_args()
    report = load_data(args.out)
    report["date"] = time.strftime("%Y-%m-%d")
    if args.accuracy or not args.speed:
        report["accuracy"] = accuracy()
        save(args.out, report)
    if args.speed or not args.accuracy:
        report["speed"] = speed(args.minutes, args.repeats, args.trackers, args.reference or None,
                                args.reference_tracker or ["crepe-tiny+viterbi"], args.network_seconds)
        save(args.out, report)
    print(json.dumps({k: v for k, v in report.items() if k != "date"}, indent=1)[:4000])


if __name__ == "__main__":
    main()

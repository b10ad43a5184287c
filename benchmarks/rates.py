"""One input, one sound, at any rate (issue 35), on one core:

- `nas render` against `nas render --block N` on the demo model, N in 32, 128, 1000, 4096,
  at its rate and at 44.1 and 48 kHz (`--rate`), and the same at a revision before the fix
  (`--before REV`: that tree's render, in a process of its own);
- the rate conversion: nas.play.rates against soxr's stream API at the qualities that
  band-limit (HQ, VHQ): what each holds back before its output (latency), seconds per
  second of audio, the stop band's leak, and Python's allocation per block;
- the live chain's latency at 48 kHz for lookaheads 512, 256, 128 and 0, the conversions'
  share, beside 16 kHz; a minute of the chain in blocks of 128, p50/p99/max per block;
- minutes of `nas play` on JACK's dummy driver at 16, 44.1 and 48 kHz (blocks of 128, the
  default lead), in turns with minutes of a client that only writes silence.

    .venv/bin/python benchmarks/rates.py [--run <data root>/demo-violin/runs/<run>] [--before f8f4c6b]

Without --run, the demo's model as committed for the tests (tests/data/demo-models/frame:
750 steps of `make demo`, norm frame).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import streaming  # noqa: E402  (first: it keeps every library to one thread before NumPy loads)

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
from record import load_data, save  # noqa: E402

REPO = streaming.REPO
BLOCKS = (32, 128, 1000, 4096)
NOTES = [(69, 110, 0.0, 0.5), (72, 40, 0.5, 1.0), (76, 110, 1.0, 1.5), (74, 90, 1.5, 3.0), (67, 100, 3.0, 4.0)]

# The render of a revision before the fix, with that tree's own modules: prints the largest
# difference of `--block N` from offline, of the offline peak, for each N.
BEFORE = """
import sys, json
import numpy as np
sys.path.insert(0, sys.argv[1])
from nas.render import render
run, midi = sys.argv[2], sys.argv[3]
offline = render(run, midi)[0]
print(json.dumps({n: float(np.abs(render(run, midi, block=int(n))[0] - offline).max() / np.abs(offline).max())
                  for n in sys.argv[4:]}))
"""


def demo_run(root: Path) -> Path:
    from tests.conftest import _demo_run

    return _demo_run(root, "frame")


def render_parity(run: Path, midi: Path) -> dict:
    from nas.play.render import render

    result = {}
    for rate in (16000, 44100, 48000):
        offline = render(run, midi, rate=rate)[0]
        peak = float(np.abs(offline).max())
        result[str(rate)] = {str(n): float(np.abs(render(run, midi, block=n, rate=rate)[0] - offline).max() / peak)
                             for n in BLOCKS}
    return result


def render_parity_before(revision: str, run: Path, midi: Path) -> dict:
    with tempfile.TemporaryDirectory() as tree:
        subprocess.run(["git", "worktree", "add", "--detach", tree, revision], cwd=REPO, check=True,
                       capture_output=True)
        try:
            done = subprocess.run([sys.executable, "-c", BEFORE, tree, str(run), str(midi), *map(str, BLOCKS)],
                                  capture_output=True, text=True, cwd=tree)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=REPO, capture_output=True)
    if done.returncode:
        return {"error": done.stderr[-500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ours(rate_in: int, rate_out: int):
    from nas.play.rates import Resampler

    resampler = Resampler(rate_in, rate_out)
    out = np.zeros(resampler.most_out(4096), np.float32)

    def convert(chunk):
        return out[:resampler.process(chunk, out)]
    convert.delay = resampler.delay  # its output is not shifted back: the filter's delay is latency too
    return convert


def _soxr(rate_in: int, rate_out: int, quality: str):
    import soxr

    stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32", quality=quality)
    return lambda chunk: stream.resample_chunk(chunk)


def conversion(rate_in: int, rate_out: int, make, chunk: int, repeats: int) -> dict:
    """Latency: the most output the converter owes after any chunk, plus the filter delay it
    leaves in its output (soxr's stream takes its own back) (ms); cost: seconds per second of audio (median of rounds); the stop band: the
    largest alias or image of a tone, of its amplitude (dB);
    allocation: Python's peak traced growth over 200 chunks in steady state (bytes)."""
    seconds = 10
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, seconds * rate_in).astype(np.float32)
    convert = make(rate_in, rate_out)
    owed, made = 0.0, 0
    for i, start in enumerate(range(0, len(noise), chunk)):
        made += len(convert(noise[start:start + chunk]))
        owed = max(owed, (start + chunk) * rate_out / rate_in - made)
    costs = []
    for _ in range(repeats):
        convert = make(rate_in, rate_out)
        clock = time.perf_counter()
        for start in range(0, len(noise), chunk):
            convert(noise[start:start + chunk])
        costs.append((time.perf_counter() - clock) / seconds)
    low = min(rate_in, rate_out)
    # down: a tone 300 Hz above the lower Nyquist must not fold back; up: a tone at 0.45 of
    # the input rate must leave no image above its Nyquist. Largest bin there, of the tone's amplitude.
    frequency = low / 2 + 300 if rate_in > rate_out else 0.45 * rate_in
    tone = np.sin(2 * np.pi * frequency * np.arange(2 * rate_in) / rate_in).astype(np.float32)
    convert = make(rate_in, rate_out)
    made = np.concatenate([convert(tone[s:s + chunk]).copy() for s in range(0, len(tone), chunk)])
    middle = made[len(made) // 4:len(made) // 4 + rate_out // 2]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle)))) / (np.hanning(len(middle)).sum() / 2)
    bins = np.fft.rfftfreq(len(middle), 1 / rate_out)
    leak = float(spectrum[bins > low / 2 + 50].max() if rate_in < rate_out else spectrum.max())
    convert = make(rate_in, rate_out)
    for start in range(0, 50 * chunk, chunk):
        convert(noise[start:start + chunk])
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for start in range(50 * chunk, 250 * chunk, chunk):
        convert(noise[start:start + chunk])
    growth = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return {"latency_ms": 1000 * (owed + getattr(make(rate_in, rate_out), "delay", 0)) / rate_out,
            "seconds_per_second": float(np.median(costs)),
            "stop_band_db": float(20 * np.log10(max(leak, 1e-12))), "allocation_bytes_per_200_chunks": growth}


def chain_latency(engine, statistics) -> dict:
    from nas.play.live import LiveTransfer

    result = {}
    for rate in (16000, 48000):
        for lookahead in (512, 256, 128, 0):
            live = LiveTransfer(engine, statistics, 128, lookahead, rate=rate)
            result[f"{rate}/{lookahead}"] = {"latency_ms": 1000 * live.latency / rate,
                                             "conversion_ms": 1000 * live.conversion_lag / rate}
    return result


def chain_minute(engine, statistics, audio: np.ndarray, own: int, rate: int) -> dict:
    """A minute of the demo violin through the warmed live chain at `rate`, blocks of 128."""
    from nas.play.device import _warm
    from nas.play.live import LiveTransfer
    from nas.play.rates import convert

    source = convert(np.tile(audio, int(np.ceil(60 * own / len(audio))))[:60 * own], own, rate)
    _warm(engine, statistics, 128, 512, rate)
    live = LiveTransfer(engine, statistics, 128, rate=rate)
    out = np.zeros(128, np.float32)
    costs, late = [], 0
    for start in range(0, len(source) - 128, 128):
        clock = time.perf_counter()
        late += live.process(source[start:start + 128], out)
        costs.append(time.perf_counter() - clock)
    costs_ms = 1000 * np.asarray(costs)
    return {"p50_ms": float(np.percentile(costs_ms, 50)), "p99_ms": float(np.percentile(costs_ms, 99)),
            "max_ms": float(costs_ms.max()), "block_ms": 1000 * 128 / rate, "late_samples": late}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a trained run that streams (default: the committed demo model)")
    parser.add_argument("--before", help="a revision to measure the render parity of, e.g. f8f4c6b")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jack-seconds", type=float, default=60.0)
    parser.add_argument("--jack-rounds", type=int, default=3)
    parser.add_argument("--out", default="rates")
    parser.add_argument("--only", choices=["render", "conversion", "chain", "jack"], action="append",
                        help="measure only these parts, keeping the others' figures from the results file")
    args = parser.parse_args()
    wanted = set(args.only or ["render", "conversion", "chain", "jack"])
    from nas.play.model import load_engine, run_paths
    from nas.store.datasets import load_statistics
    from tests.conftest import demo_audio
    from tests.test_render import _midi

    work = Path(tempfile.mkdtemp(prefix="nas-rates-"))
    run = args.run or demo_run(work)
    midi = _midi(work / "tune.mid", NOTES)
    result = load_data(args.out) if args.only else {}
    result |= {"date": time.strftime("%Y-%m-%d"), "run": str(run.name)}
    if "render" in wanted:
        result["render_parity_of_peak"] = render_parity(run, midi)
        print("render vs render --block, of peak:", result["render_parity_of_peak"], flush=True)
    if args.before and "render" in wanted:
        result["render_parity_of_peak_before"] = {"revision": args.before,
                                                  "16000": render_parity_before(args.before, run, midi)}
        print("the same before:", result["render_parity_of_peak_before"], flush=True)
    if "conversion" in wanted:
        result["conversion"] = {}
        for rate_in, rate_out, chunk in ((48000, 16000, 128), (44100, 16000, 128), (16000, 48000, 43),
                                         (16000, 44100, 64)):
            for name, make in (("nas", _ours), ("soxr-HQ", lambda a, b: _soxr(a, b, "HQ")),
                               ("soxr-VHQ", lambda a, b: _soxr(a, b, "VHQ"))):
                figures = conversion(rate_in, rate_out, make, chunk, args.repeats)
                result["conversion"][f"{rate_in}->{rate_out} {name}"] = figures
                print(f"{rate_in}->{rate_out} {name}:", {k: round(v, 6) for k, v in figures.items()}, flush=True)
    if "chain" in wanted:
        run_dir, dataset_dir = run_paths(run)
        engine, statistics = load_engine(run_dir), load_statistics(dataset_dir)
        result["chain_latency"] = chain_latency(engine, statistics)
        print("latency:", result["chain_latency"], flush=True)
        audio, own = demo_audio()
        rounds = {rate: [chain_minute(engine, statistics, audio, own, rate) for _ in range(args.repeats)]
                  for rate in (16000, 48000)}  # not interleaved: each round warms its own chain
        result["chain_minute"] = {str(rate): {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
                                  for rate, runs in rounds.items()}
        print("a minute of the chain:", result["chain_minute"], flush=True)
    if "jack" in wanted:
        result["jack"] = jack_rounds(run, args.jack_seconds, args.jack_rounds)
    save(args.out, result)


def jack_rounds(run: Path, seconds: float, rounds: int) -> dict:
    """`nas play` and a client that only writes silence, in turns, at each rate."""
    jack = {}
    for rate in (16000, 44100, 48000):
        plays, nulls = [], []
        for _ in range(rounds):
            plays.append(streaming.jack_minute(run, seconds, rate))
            nulls.append(streaming.null_client_minute(seconds, rate))
            print(f"jack {rate}:", plays[-1], "silent client xruns:", nulls[-1], flush=True)
        jack[str(rate)] = {"play": plays, "silent_client_xruns": nulls}
    return jack


if __name__ == "__main__":
    main()

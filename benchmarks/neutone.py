"""Neutone FX models (issue 37): the delay and speed of model.nm as the plugin runs it
(neutone-sdk's loader and wrapper: the host's rate converted to the model's 16 kHz and its
buffers re-cut to the model's), at 44.1 and 48 kHz in buffers of 128 to 2,048, one thread,
beside nas's own live chain (`nas play`'s LiveTransfer) at the same rate and block.

    .venv/bin/python benchmarks/neutone.py [--run <data root>/demo-violin/runs/<run>]

Without --run, the demo's model as committed for the tests (tests/data/demo-models/frame).
Needs `make neutone-env`. Seconds per second of audio are medians of 5 runs of 2 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import streaming  # noqa: E402  (first: it keeps every library to one thread before NumPy loads)

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from record import save  # noqa: E402

REPO = streaming.REPO
RATES, BUFFERS = (44100, 48000), (128, 256, 512, 1024, 2048)


def nas_chain(engine, statistics, audio: np.ndarray, rate: int, block: int, repeats: int = 5) -> float:
    """Median seconds per second of `nas play`'s chain on `audio` at `rate` in `block`s."""
    from nas.play.live import LiveTransfer

    runs = []
    for _ in range(repeats):
        chain = LiveTransfer(engine, statistics, block, rate=rate)
        out = np.zeros(block, np.float32)
        blocks = len(audio) // block
        start = time.perf_counter()
        for i in range(blocks):
            chain.process(audio[i * block:(i + 1) * block], out)
        runs.append((time.perf_counter() - start) / (blocks * block / rate))
    return float(np.median(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a trained run (default: the committed demo model)")
    args = parser.parse_args()
    from nas.play.neutone import bundle, run_in_environment
    from nas.play.model import load_engine, run_paths
    from nas.store.datasets import load_statistics
    from nas.play.rates import convert
    from tests.conftest import demo_audio

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if args.run:
            run = args.run
        else:
            from tests.conftest import _demo_run
            run = _demo_run(folder / "root", "frame")
        engine, statistics = load_engine(run), load_statistics(run_paths(run)[1])
        bundle(engine, folder / "bundle.npz", "demo-violin", "benchmark")
        for command in (("export", str(folder / "bundle.npz"), str(folder / "nm")),
                        ("benchmark", str(folder / "nm" / "model.nm"), str(folder / "rows.json"))):
            done = run_in_environment(*command, timeout=1800)
            if done.returncode:
                sys.exit(done.stderr[-3000:])
        rows = json.loads((folder / "rows.json").read_text())
    violin, own = demo_audio()
    for row in rows:
        audio = convert(violin[:2 * own], own, row["rate"])
        row["nas_seconds_per_second"] = nas_chain(engine, statistics, audio, row["rate"], row["buffer"])
    result = {"measured": time.strftime("%Y-%m-%d"), "threads": 1, "rows": rows}
    save("neutone", result)
    print("| rate | buffer | SDK's delay (buffering + model) | model.nm, x real time | nas play's chain | ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        delay = r["buffering_delay"] + r["model_delay"]
        print(f"| {r['rate']} | {r['buffer']} | {delay} ({1000 * delay / r['rate']:.1f} ms: {r['buffering_delay']} "
              f"+ {r['model_delay']}) | {1 / r['seconds_per_second']:.1f}x | {1 / r['nas_seconds_per_second']:.1f}x "
              f"| {r['nas_seconds_per_second'] / r['seconds_per_second']:.2f} |")


if __name__ == "__main__":
    main()

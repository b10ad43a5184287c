"""Peak memory of preparing one long file: 10 and 60 minutes, streaming (this tree) vs the
whole-file reading of the code before it (a git worktree of `--reference`, default
ab3f504), side by side.

    .venv/bin/python benchmarks/prepare_memory.py [--minutes 10 60] [--repeats 1] [--reference ab3f504]

The file is the demo violin tiled to length, 32 kHz FLAC (so it is resampled). Each run
is a fresh process preparing it with CREPE tiny (full would take hours: the network is
the same either way and its memory does not depend on the file's length) into an empty
data root, DirectRunner in its default multi_processing mode; peak RSS is summed over
the process tree, sampled every 0.1 s from outside. Runs are interleaved.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml
from prepare_vs_ddsp import AUDIO, REPO, measured, reference_tree
from record import save

CHILD = """
import sys
from pathlib import Path
from nas.config import DatasetConfig
from nas.data.prepare import prepare_dataset
assert Path(sys.argv[3]).resolve() in Path(__import__("nas").__file__).resolve().parents, "wrong nas imported"
config = DatasetConfig(name="long", audio=[sys.argv[1]], crepe={"capacity": "tiny", "viterbi": True})
print(prepare_dataset(config, Path("/"), Path(sys.argv[2])))
"""


def long_file(minutes: int, folder: Path) -> Path:
    path = folder / f"violin-{minutes}min.flac"
    if not path.exists():
        pieces = [sf.read(p, dtype="float32") for p in AUDIO]
        rate = pieces[0][1]
        audio = np.concatenate([a for a, _ in pieces])
        with sf.SoundFile(path, "w", rate, 1, format="FLAC") as f:  # written in pieces: it is long
            for _ in range(int(np.ceil(minutes * 60 * rate / len(audio)))):
                f.write(audio[: minutes * 60 * rate - f.frames])
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, nargs="+", default=[10, 60])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--reference", default="ab3f504", help="commit of the whole-file code")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nas-memory-"))
    runs: dict[str, list[dict]] = {}
    try:
        with reference_tree(args.reference, work / "reference") as reference:
            trees = {"streaming": REPO, "whole-file": reference}
            for repeat in range(args.repeats):
                for minutes in args.minutes:
                    audio = long_file(minutes, work)
                    for name, tree in trees.items():
                        out = work / "out"
                        subprocess.run(["rm", "-rf", str(out)], check=True)
                        result = measured([sys.executable, "-c", CHILD, str(audio), str(out), str(tree)], cwd=tree)
                        result["records_gb"] = sum(p.stat().st_size for p in out.rglob("*.tfrecord-*")) / 1e9
                        runs.setdefault(f"{name}-{minutes}min", []).append(result)
                        print(f"[{repeat + 1}/{args.repeats}] {name}, {minutes} min: {result['wall_s']:.0f} s "
                              f"({minutes * 60 / result['wall_s']:.2f}x real time), "
                              f"peak {result['peak_rss_gb']:.2f} GB, records {result['records_gb']:.2f} GB", flush=True)
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    median = {k: {m: float(np.median([r[m] for r in v])) for m in ("wall_s", "peak_rss_gb")} for k, v in runs.items()}
    report = {"crepe": "tiny", "repeats": args.repeats, "reference": args.reference, "runs": runs, "median": median}
    save("prepare_memory", report)
    print(yaml.safe_dump({"median": median}, sort_keys=False))


if __name__ == "__main__":
    main()

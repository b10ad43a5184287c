"""Our `prepare` vs ddsp's own `prepare_tfrecord`, side by side on the same audio.

    .venv/bin/python benchmarks/prepare_vs_ddsp.py [--files 4] [--repeats 1]

Both get the same files and settings (16 kHz, 50 frames/s, centred, 4 s examples,
1 s hop, 20 s chunks, 10% eval, CREPE full + Viterbi). Each run is a fresh process;
wall time and the peak resident memory of its whole process tree (Beam workers
included) are measured from outside. ddsp decodes through pydub, which needs Debian's
ffmpeg. ddsp imports `crepe`; the PyPI package cannot be installed, so ddsp runs on
nas' crepe-compatible module with crepe's API defaults (batch 32). Also measured in the
same run: this machine's float32 matrix-multiply throughput, to place CREPE's frames
per second against the FLOP bound, and CREPE-tiny end to end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
import yaml
from record import save

REPO = Path(__file__).resolve().parents[1]
AUDIO = sorted((REPO / "data/demo-violin/audio").glob("*.flac"))
CREPE_FULL_GFLOP_PER_FRAME = 2.8


def child_ours(files: list[str], out: str, capacity: str) -> None:
    from nas.config import DatasetConfig
    from nas.data.prepare import prepare_dataset

    config = DatasetConfig(name="bench", audio=files, sample_rate=16000, frame_rate=50, centered=True,
                           example_secs=4, hop_secs=1, chunk_secs=20, eval_fraction=0.1,
                           crepe={"capacity": capacity, "viterbi": True})
    prepare_dataset(config, Path("/"), Path(out))


def child_ddsp(files: list[str], out: str) -> None:
    from nas import ddsp_api

    lib = ddsp_api.prepare_tfrecord_lib()
    lib.prepare_tfrecord(files, str(Path(out) / "ddsp"), num_shards=2, sample_rate=16000, frame_rate=50,
                         example_secs=4, hop_secs=1, eval_split_fraction=0.1, chunk_secs=20.0, center=True,
                         viterbi=True, pipeline_options=["--runner=DirectRunner"])


@contextmanager
def reference_tree(commit: str, path: Path) -> Iterator[Path]:
    """A git worktree of `commit` at `path`, its bytecode compiled as `make install` compiles
    ours (this machine sets PYTHONDONTWRITEBYTECODE); removed on the way out. Run its code
    in a process started there (`cwd`): `python -c` and `-m` put that directory first on
    the path."""
    subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=REPO, check=True,
                   capture_output=True)
    try:
        packages = [str(path / d) for d in ("flows", "tasks", "nas") if (path / d).is_dir()]
        subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, check=False)


def alternating(reference: str, repeats: int, child: str, *args, describe: Callable[[dict], str]) -> dict:
    """{"this tree": [...], "@<reference>": [...]}: the JSON that `child` (a `python -c`
    program) prints on its last line, run `repeats` times in each tree, the sides
    alternating, each run a fresh process started in its tree with `args`, then the tree's
    path, as its arguments. `describe` says a result in the progress lines."""
    with tempfile.TemporaryDirectory(prefix="nas-reference-") as work, \
            reference_tree(reference, Path(work) / "reference") as tree:
        runs: dict[str, list[dict]] = {"this tree": [], f"@{reference}": []}
        for repeat in range(repeats):
            for name, root in (("this tree", REPO), (f"@{reference}", tree)):
                done = subprocess.run([sys.executable, "-c", child, *map(str, args), str(root)], cwd=root,
                                      capture_output=True, text=True, check=True)
                runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"[{repeat + 1}/{repeats}] {name}: {describe(runs[name][-1])}", flush=True)
    return runs


def medians(runs: dict[str, list[dict]], figures) -> dict[str, dict[str, float]]:
    """Each side's median of each figure, from `alternating`'s runs."""
    return {name: {figure: statistics.median(r[figure] for r in results) for figure in figures}
            for name, results in runs.items()}


def measured(args: list[str], cwd: Path | None = None) -> dict:
    """Wall seconds and peak RSS (sum over the process tree, sampled every 0.1 s)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a long run's log would fill a pipe and block it
        process = psutil.Popen(args, stdout=subprocess.DEVNULL, stderr=log, cwd=cwd)
        peak = 0
        while process.poll() is None:
            try:
                tree = [process, *process.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)
        wall = time.perf_counter() - start
        if process.returncode:
            log.seek(0)
            raise RuntimeError(f"{args} failed:\n{log.read().decode()[-3000:]}")
    return {"wall_s": wall, "peak_rss_gb": peak / 1e9}


def matmul_gflops() -> float:
    import tensorflow as tf

    a, b = tf.random.normal([4096, 1024]), tf.random.normal([1024, 4096])
    f = tf.function(lambda x, y: tf.matmul(x, y))
    f(a, b)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        f(a, b).numpy()
        times.append(time.perf_counter() - t)
    return float(2 * 4096 * 1024 * 4096 / np.median(times) / 1e9)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=4, help="demo files (32 s each)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", choices=["ours", "ddsp"])
    parser.add_argument("--capacity", default="full")
    parser.add_argument("--out")
    args = parser.parse_args()
    files = [str(p) for p in AUDIO[: args.files]]
    if args.child == "ours":
        return child_ours(files, args.out, args.capacity)
    if args.child == "ddsp":
        return child_ddsp(files, args.out)

    seconds = args.files * 32.0
    frames = args.files * (20 * 50 + 1 + 12 * 50 + 1)  # each 32 s file: chunks of 20 + 12 s, centred
    runs: dict[str, list[dict]] = {"ours_full": [], "ddsp_full": [], "ours_tiny": []}
    for repeat in range(args.repeats):
        for name, child, capacity in [("ours_full", "ours", "full"), ("ddsp_full", "ddsp", "full"),
                                      ("ours_tiny", "ours", "tiny")]:
            with tempfile.TemporaryDirectory() as out:
                result = measured([sys.executable, __file__, "--child", child, "--capacity", capacity,
                                   "--files", str(args.files), "--out", out])
            runs[name].append(result)
            print(f"[{repeat + 1}/{args.repeats}] {name}: {result['wall_s']:.1f} s, "
                  f"{seconds / result['wall_s']:.2f}x real time, peak {result['peak_rss_gb']:.2f} GB", flush=True)
    gflops = matmul_gflops()
    median = {k: {m: float(np.median([r[m] for r in v])) for m in ("wall_s", "peak_rss_gb")} for k, v in runs.items()}
    report = {
        "audio_seconds": seconds, "crepe_frames": frames, "repeats": args.repeats, "runs": runs, "median": median,
        "speedup_vs_ddsp_full": median["ddsp_full"]["wall_s"] / median["ours_full"]["wall_s"],
        "real_time_factor": {k: seconds / v["wall_s"] for k, v in median.items()},
        "crepe_full_frames_per_s_end_to_end": frames / median["ours_full"]["wall_s"],
        "matmul_gflops_measured": gflops,
        "crepe_full_bound_frames_per_s": {"design_150_gflops": 150 / CREPE_FULL_GFLOP_PER_FRAME,
                                          "measured_matmul": gflops / CREPE_FULL_GFLOP_PER_FRAME},
    }
    save("prepare_vs_ddsp", report)
    print(yaml.safe_dump({k: v for k, v in report.items() if k != "runs"}, sort_keys=False))


if __name__ == "__main__":
    main()

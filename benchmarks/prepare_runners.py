"""Preparation wall time on Beam's DirectRunner (1 and 2 workers) and on the Dask runner
(a dask.distributed LocalCluster of 2 worker processes), with the same output.

    .venv/bin/python benchmarks/prepare_runners.py [--files 3] [--repeats 2] [--capacity tiny]

Each run is a fresh process preparing the same demo files into an empty data root; the
Dask run starts its cluster inside that process, so cluster start-up is in its time and
the workers are in its peak memory (the process tree is measured from outside). Runs are
interleaved so that machine load hits every variant. The records of every run are hashed;
the script fails if any differ.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from prepare_vs_ddsp import AUDIO, measured
from record import save

VARIANTS = {
    "direct-1": {"runner": "DirectRunner", "direct_num_workers": 1},
    "direct-2": {"runner": "DirectRunner", "direct_num_workers": 2},
    "dask-2": {"runner": "DaskRunner"},
}


def child(variant: str, files: list[str], out: str, capacity: str) -> None:
    from nas.config import DatasetConfig
    from nas.data.prepare import prepare_dataset

    def prepare(beam: dict) -> Path:
        config = DatasetConfig(name="bench", audio=files, sample_rate=16000, frame_rate=50, centered=True,
                               example_secs=4, hop_secs=1, chunk_secs=20, eval_fraction=0.1,
                               crepe={"capacity": capacity, "viterbi": True}, beam=beam)
        return prepare_dataset(config, Path("/"), Path(out))

    beam = dict(VARIANTS[variant])
    if beam["runner"] == "DaskRunner":
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            dataset = prepare({**beam, "options": {"dask_client_address": cluster.scheduler_address}})
    else:
        dataset = prepare(beam)
    digest = hashlib.sha256()
    for path in sorted(dataset.glob("*.tfrecord-*")):
        digest.update(path.name.encode() + path.read_bytes())
    (Path(out) / "records.sha256").write_text(digest.hexdigest())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=3, help="demo files (32 s each)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--capacity", default="tiny")
    parser.add_argument("--child", choices=list(VARIANTS))
    parser.add_argument("--out")
    args = parser.parse_args()
    files = [str(p) for p in AUDIO[: args.files]]
    if args.child:
        return child(args.child, files, args.out, args.capacity)

    seconds = args.files * 32.0
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    digests = set()
    for repeat in range(args.repeats):
        for name in VARIANTS:
            with tempfile.TemporaryDirectory() as out:
                result = measured([sys.executable, __file__, "--child", name, "--files", str(args.files),
                                   "--capacity", args.capacity, "--out", out])
                digests.add((Path(out) / "records.sha256").read_text())
            runs[name].append(result)
            print(f"[{repeat + 1}/{args.repeats}] {name}: {result['wall_s']:.1f} s, "
                  f"{seconds / result['wall_s']:.2f}x real time, peak {result['peak_rss_gb']:.2f} GB", flush=True)
    if len(digests) != 1:
        raise SystemExit(f"the runners wrote different records: {sorted(digests)}")
    median = {k: {m: float(np.median([r[m] for r in v])) for m in ("wall_s", "peak_rss_gb")} for k, v in runs.items()}
    report = {
        "audio_seconds": seconds, "crepe": args.capacity, "repeats": args.repeats, "records_sha256": digests.pop(),
        "runs": runs, "median": median,
        "speedup_vs_direct_1": {k: median["direct-1"]["wall_s"] / v["wall_s"] for k, v in median.items()},
    }
    save("prepare_runners", report)
    print(yaml.safe_dump({k: v for k, v in report.items() if k != "runs"}, sort_keys=False))


if __name__ == "__main__":
    main()

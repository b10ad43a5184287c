"""The demo DAG with its data root (and audio) in a bucket, against a local root.

    .venv/bin/python benchmarks/object_store.py [--runs 3] [--steps 200] [--config dataset_configs/demo-violin.yaml]

The bucket is moto's S3 server on this machine (tests/s3_server.py), reached through a
relay that counts what crosses it. Each round runs the stages as a user types them, each a
new process: `nas prepare`, `nas train --dataset-version V --steps N`, `nas evaluate`,
`nas export`, then `nas run` with everything done (the cached re-run); once with a new local
root, once with a new bucket root and the config's audio uploaded to the bucket, each with
an empty cache (`NAS_CACHE_DIR`). After the round, the bucket's version is staged again from
the warm cache, in this process. Rounds alternate which root goes first.

Reported: per stage the median wall time of each root and their ratio; for the bucket the
bytes up and down, the requests, and the objects one command fetched whole more than once;
moto's own CPU seconds in each stage (the part of the gap that is the server, a Python
process on the same 2 cores). Goals (issue 24): prepare and train at most 15% slower than
local, a cached re-run at most 2 s slower, no object downloaded twice by one command,
staging a cached version in at most 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from flows.cli.local_server import local_server  # noqa: E402
from tests.s3_server import Relay, moto_server  # noqa: E402
from record import save  # noqa: E402

BIN = REPO / ".venv" / "bin"
STAGES = ("prepare", "train", "evaluate", "export", "cached run")
GOALS = {"prepare": 1.15, "train": 1.15}


def run_stages(config: Path, root: str, steps: int, env: dict, relay: Relay | None, moto: psutil.Process) -> dict:
    """Each stage's wall time (and, for a bucket, what crossed the relay and moto's CPU time)."""
    results = {}
    version = None
    for stage in STAGES:
        args = {"prepare": ["prepare", str(config)],
                "train": ["train", str(config), "--dataset-version", str(version), "--steps", str(steps)],
                "evaluate": ["evaluate", str(config)],
                "export": ["export", str(config)],
                "cached run": ["run", str(config), "--steps", str(steps)]}[stage]
        before = relay.counts() if relay else None
        cpu = sum(moto.cpu_times()[:2])
        start = time.perf_counter()
        done = subprocess.run([str(BIN / "nas"), *args, "--data-root", root], cwd=REPO, env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"nas {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        if stage == "prepare":
            version = done.stdout.strip().splitlines()[-1].rstrip("/").rsplit("/", 1)[-1]
        row = {"seconds": seconds, "moto_cpu_s": sum(moto.cpu_times()[:2]) - cpu}
        if relay:
            after = relay.counts()
            gets = {k: n - before["object_gets"].get(k, 0) for k, n in after["object_gets"].items()}
            row.update(bytes_up=after["bytes_up"] - before["bytes_up"],
                       bytes_down=after["bytes_down"] - before["bytes_down"],
                       requests=sum(after["requests"].values()) - sum(before["requests"].values()),
                       fetched_twice=sorted(k for k, n in gets.items() if n > 1))
        results[stage] = row
    results["version"] = version
    return results


def stage_warm(root: str, config: Path, version: str, env: dict) -> float:
    """Seconds to stage the version from the warm cache, in a new process (imports excluded)."""
    name = yaml.safe_load(config.read_text())["name"]
    code = ("import sys, time; from nas.locations import location; from nas.store.cache import stage_dataset; "
            "d = location(sys.argv[1]); t = time.perf_counter(); stage_dataset(d); print(time.perf_counter() - t)")
    done = subprocess.run([str(BIN / "python"), "-c", code, f"{root}/{name}/{version}"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def bucket_config(config: Path, bucket: str, folder: Path) -> Path:
    """The config with its audio uploaded to the bucket and listed by URL."""
    import s3fs

    from nas.config import find_audio, load_config

    parsed, base = load_config(config)
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    for path in find_audio(parsed, base):
        fs.put_file(str(path), f"{bucket}/audio/{path.name}")
    raw = yaml.safe_load(config.read_text())
    raw["audio"] = [f"s3://{bucket}/audio/"]
    out = folder / config.name
    out.write_text(yaml.safe_dump(raw))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200, help="training steps of each run")
    parser.add_argument("--config", default="dataset_configs/demo-violin.yaml")
    parser.add_argument("--out", default="object_store", help="results file name in benchmarks/results/")
    args = parser.parse_args()
    config = (REPO / args.config).resolve()
    rounds = []
    with tempfile.TemporaryDirectory() as work, moto_server() as (endpoint, moto_process), \
            local_server(Path(work) / "prefect") as server:
        work = Path(work)
        relay = Relay(endpoint)
        relay.start()
        credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
        os.environ.update(AWS_ENDPOINT_URL=relay.url, **credentials)
        moto = psutil.Process(moto_process.pid)
        import s3fs

        s3fs.S3FileSystem(skip_instance_cache=True).mkdir("bench")
        remote_config = bucket_config(config, "bench", work)
        for i in range(args.runs):
            result = {}
            order = ("local", "bucket") if i % 2 == 0 else ("bucket", "local")
            for kind in order:
                cache = work / f"cache-{kind}-{i}"
                env = {**server.env, "AWS_ENDPOINT_URL": relay.url, **credentials, "NAS_CACHE_DIR": str(cache)}
                if kind == "local":
                    result[kind] = run_stages(config, str(work / f"root-{i}"), args.steps, env, None, moto)
                else:
                    root = f"s3://bench/root-{i}"
                    result[kind] = run_stages(remote_config, root, args.steps, env, relay, moto)
                    result[kind]["staging_warm_s"] = stage_warm(root, remote_config, result[kind]["version"], env)
            rounds.append(result)
            print(f"round {i + 1}/{args.runs}: " + "; ".join(
                f"{stage} {result['local'][stage]['seconds']:.1f} / {result['bucket'][stage]['seconds']:.1f} s"
                for stage in STAGES) + f"; warm staging {result['bucket']['staging_warm_s']:.2f} s", flush=True)
        relay.stop()

    summary = {}
    for stage in STAGES:
        local = statistics.median(r["local"][stage]["seconds"] for r in rounds)
        bucket = statistics.median(r["bucket"][stage]["seconds"] for r in rounds)
        summary[stage] = {
            "local_s": local, "bucket_s": bucket, "ratio": bucket / local, "gap_s": bucket - local,
            "moto_cpu_s": statistics.median(r["bucket"][stage]["moto_cpu_s"] for r in rounds),
            "bytes_up": statistics.median(r["bucket"][stage]["bytes_up"] for r in rounds),
            "bytes_down": statistics.median(r["bucket"][stage]["bytes_down"] for r in rounds),
            "requests": statistics.median(r["bucket"][stage]["requests"] for r in rounds),
            "fetched_twice": sorted({k for r in rounds for k in r["bucket"][stage]["fetched_twice"]}),
        }
    warm = statistics.median(r["bucket"]["staging_warm_s"] for r in rounds)
    goals = {
        **{f"{stage} at most {round((g - 1) * 100)}% slower": summary[stage]["ratio"] <= g for stage, g in GOALS.items()},
        "cached run at most 2 s slower": summary["cached run"]["gap_s"] <= 2.0,
        "no object downloaded twice by one command": not any(s["fetched_twice"] for s in summary.values()),
        "staging a cached version in at most 1 s": warm <= 1.0,
    }
    result = {"date": time.strftime("%Y-%m-%d"), "config": args.config, "runs": args.runs, "steps": args.steps,
              "rounds": rounds, "median": summary, "staging_warm_s": warm, "goals": goals}
    save(args.out, result)
    print(f"{'stage':>10}  {'local':>7}  {'bucket':>7}  ratio  {'moto cpu':>8}  {'MB up':>7}  {'MB down':>7}  requests")
    for stage, s in summary.items():
        print(f"{stage:>10}  {s['local_s']:6.1f}s  {s['bucket_s']:6.1f}s  {s['ratio']:5.2f}  {s['moto_cpu_s']:7.1f}s"
              f"  {s['bytes_up'] / 1e6:7.1f}  {s['bytes_down'] / 1e6:7.1f}  {s['requests']:8.0f}")
    print(f"staging a cached version: {warm:.2f} s")
    for goal, met in goals.items():
        print(f"{'met' if met else 'NOT met'}: {goal}")


if __name__ == "__main__":
    main()

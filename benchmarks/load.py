"""Many datasets at once: N small datasets registered together through `nas register`, each
event triggering `pipeline-on-register`, the pipelines run by process workers under the
deployment's concurrency limit (prefect.yaml).

    .venv/bin/python benchmarks/load.py [--datasets 20] [--workers 1 2] [--seconds 16] [--steps 5]

For each number of workers, on a new Prefect server and a new checkout (its own
prefect.yaml and dataset_configs): whether every pipeline completed exactly once (no
duplicate, none lost), the wall time from the first `nas register` to the last final state,
the peak memory of the server, the workers and their flow-run processes together, the most
pipelines that ran at once, and the Prefect API's response times (p50, p99) to a flow-run
query sent once a second while the work runs. The suite runs the same scenario with 2
datasets (tests/test_load.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from flows.cli.local_server import local_server, stop  # noqa: E402

BIN = REPO / ".venv" / "bin"
DEMO_AUDIO = REPO / "data" / "demo-violin" / "audio"
DEPLOYMENT = "pipeline-on-register"
POOL = "nas-process"


def checkout(folder: Path) -> Path:
    """A checkout of the repository as a lab would have one: the code, and its own
    prefect.yaml and dataset_configs/ for `nas register` to extend."""
    (folder / "dataset_configs").mkdir(parents=True)
    for code in ("flows", "tasks", "nas"):
        (folder / code).symlink_to(REPO / code)
    shutil.copy(REPO / "prefect.yaml", folder / "prefect.yaml")
    return folder


def small_datasets(folder: Path, count: int, seconds: float) -> list[Path]:
    """`count` folders of `seconds` of real violin each, cut from the demo's recordings at
    different places, so that every dataset is a version of its own."""
    sources = [sf.read(path, dtype="float32") for path in sorted(DEMO_AUDIO.glob("*.flac"))]
    folders = []
    for i in range(count):
        audio, rate = sources[i % len(sources)]
        length = int(seconds * rate)
        start = (i // len(sources)) * length % max(1, len(audio) - length)
        target = folder / f"load-{i:02d}"
        target.mkdir(parents=True)
        sf.write(target / "take.flac", audio[start:start + length], rate)
        folders.append(target)
    return folders


def _run(args: list[str], env: dict, cwd: Path) -> None:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


async def _flow_runs() -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[DEPLOYMENT])))


def process_tree(roots: set[int]) -> dict[int, int]:
    """The given processes and all their descendants (the server, the workers and the
    flow-run processes they start), each with its resident bytes, read from /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    parents, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            rss[int(entry.name)] = int((entry / "statm").read_text().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue  # a process that ended while it was read

    def in_tree(pid: int) -> bool:
        while pid > 1:
            if pid in roots:
                return True
            pid = parents.get(pid, 0)
        return False

    return {pid: size for pid, size in rss.items() if in_tree(pid)}


class Watch:
    """Once a second, while the work runs: the API's response time to a flow-run query, and
    the memory of the processes under `roots`."""

    def __init__(self, api: str, roots: set[int]):
        import httpx

        self.api, self.roots, self.client = api, roots, httpx.Client(timeout=60)
        self.latencies_ms: list[float] = []
        self.peak_rss = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="load-watch", daemon=True)

    def __enter__(self) -> "Watch":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()
        self.client.close()

    def _loop(self) -> None:
        while not self.stopped.wait(1.0):
            start = time.perf_counter()
            response = self.client.post(f"{self.api}/flow_runs/filter", json={"limit": 50})
            if response.status_code == 200:
                self.latencies_ms.append((time.perf_counter() - start) * 1000)
            self.peak_rss = max(self.peak_rss, sum(process_tree(self.roots).values()))


def _most_at_once(runs) -> int:
    """The most runs whose Running spans overlapped."""
    edges = sorted([(r.start_time, 1) for r in runs if r.start_time and r.end_time]
                   + [(r.end_time, -1) for r in runs if r.start_time and r.end_time])
    most = now = 0
    for _, change in edges:
        now += change
        most = max(most, now)
    return most


def run_load(work: Path, datasets: int, workers: int, seconds: float = 16.0, steps: int = 5,
             timeout: float = 3600.0, progress=print) -> dict:
    """The scenario on a new server: returns what happened to every registered dataset and
    the figures. Raises TimeoutError if some pipeline has no final state within `timeout`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    project = checkout(work / "project")
    folders = small_datasets(work / "audio", datasets, seconds)
    with local_server(work / "prefect-home") as server:
        env = {**server.env, "NAS_REPO": str(project), "PREFECT_WORKER_QUERY_SECONDS": "2"}
        _run([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"], env, project)
        _run([str(BIN / "prefect"), "--no-prompt", "deploy", "--name", DEPLOYMENT], env, project)
        logs = [(work / f"worker-{i}.log").open("w") for i in range(workers)]
        pool = [subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", POOL], env=env, cwd=project,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True) for log in logs]
        small = ["--set", "pitch.method=swiftf0", "--set", "crepe.capacity=tiny", "--set", "hop_secs=2.0", "--set", "chunk_secs=8.0",
                 "--set", "eval_fraction=0.34", "--set", "wandb.mode=offline", "--set", "wandb.project=nas-load",
                 "--set", f"training.steps={steps}", "--set", "training.overrides.optim.batch_size=2"]
        roots = {server.pid, *(p.pid for p in pool)}
        try:
            with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}), \
                    Watch(env["PREFECT_API_URL"], roots) as watch:
                start = time.monotonic()
                registering = [subprocess.Popen([str(BIN / "nas"), "register", str(folder), "--name", folder.name,
                                                 *small, "--data-root", str(work / "nas-data")],
                                                env=env, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                text=True) for folder in folders]
                failed = [p.args[3] for p in registering if p.wait(600) != 0]
                if failed:
                    raise RuntimeError(f"nas register failed for {failed}")
                progress(f"{datasets} datasets registered in {time.monotonic() - start:.0f} s; waiting for their "
                         f"pipelines on {workers} worker(s)")
                runs, done = _wait_for_final(datasets, start + timeout, start, progress)
                wall = time.monotonic() - start
        finally:
            for process in pool:
                stop(process)
            for log in logs:
                log.close()
    by_config: dict[str, list] = {}
    for run in runs:
        by_config.setdefault(run.parameters.get("config_path", "?"), []).append(run)
    expected = {f"dataset_configs/{folder.name}.yaml" for folder in folders}
    latencies = sorted(watch.latencies_ms)
    return {
        "datasets": datasets, "workers": workers, "flow_runs": len(runs),
        "completed_once": sum(1 for c in expected if len(by_config.get(c, [])) == 1
                              and by_config[c][0].state.is_completed()),
        "duplicates": sorted(c for c, rs in by_config.items() if len(rs) > 1),
        "lost": sorted(expected - by_config.keys()),
        "not_completed": sorted(f"{r.parameters.get('config_path')}: {r.state.name}: {r.state.message}" for r in runs
                                if not r.state.is_completed()),
        "all_final": done,
        "wall_s": wall, "peak_rss_gb": watch.peak_rss / 2**30, "most_at_once": _most_at_once(runs),
        "api_p50_ms": float(np.percentile(latencies, 50)) if latencies else None,
        "api_p99_ms": float(np.percentile(latencies, 99)) if latencies else None,
        "api_queries": len(latencies),
    }


def _wait_for_final(expected: int, deadline: float, start: float, progress) -> tuple[list, bool]:
    last = ""
    while True:
        runs = asyncio.run(_flow_runs())
        final = [r for r in runs if r.state.is_final()]
        line = f"{len(final)}/{expected} pipelines final, {len(runs) - len(final)} in flight"
        if line != last:
            progress(f"{time.monotonic() - start:5.0f} s: {line}")
            last = line
        if len(runs) >= expected and len(final) == len(runs):
            time.sleep(5)  # a duplicate triggered late would show now
            runs = asyncio.run(_flow_runs())
            return runs, all(r.state.is_final() for r in runs)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{line} after {deadline - start:.0f} s")
        time.sleep(3)


def main() -> None:
    from record import save

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=16.0, help="audio per dataset")
    parser.add_argument("--steps", type=int, default=5, help="training steps per dataset")
    parser.add_argument("--out", default="load", help="results file name in benchmarks/results/")
    args = parser.parse_args()
    results = {}
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="nas-load-") as work:
            result = run_load(Path(work), args.datasets, workers, args.seconds, args.steps)
        results[f"{workers} worker{'s' if workers > 1 else ''}"] = result
        print(f"{workers} worker(s): {result['completed_once']}/{args.datasets} completed once, "
              f"{len(result['duplicates'])} duplicated, {len(result['lost'])} lost, {result['wall_s']:.0f} s, "
              f"peak {result['peak_rss_gb']:.1f} GB, API p50 {result['api_p50_ms']:.0f} ms, "
              f"p99 {result['api_p99_ms']:.0f} ms", flush=True)
    save(args.out, {"datasets": args.datasets, "seconds_of_audio": args.seconds, "training_steps": args.steps,
                    "runs": results})


if __name__ == "__main__":
    main()

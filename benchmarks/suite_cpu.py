"""Where the suite's CPU goes: `make test`'s command with every Python process it starts
(commands, flow runs in workers, Beam and Dask workers, servers) adding its own CPU seconds
to a log as it exits, then summed by kind of process and by test.

    .venv/bin/python benchmarks/suite_cpu.py [pytest arguments, default: the whole suite]

A `sitecustomize` on PYTHONPATH registers the hook in each process (and in `os._exit`,
which Prefect's worker processes end with). Processes killed by a signal (the scenarios'
SIGKILLs, and whatever is stopped without its exit handlers) write nothing: their share is
the suite's total, from the kernel, less the sum logged.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from record import save

REPO = Path(__file__).resolve().parents[1]
HOOK = '''
import atexit, json, os, sys
_log_path = os.environ["NAS_SUITE_CPU_LOG"]


def _log():
    times = os.times()
    with open(_log_path, "a") as log:  # one short line per process: appends do not interleave
        log.write(json.dumps({"argv": sys.argv[:8], "cpu": times.user + times.system,
                              "test": os.environ.get("PYTEST_CURRENT_TEST", "")}) + "\\n")


atexit.register(_log)
_exit = os._exit


def _logged_exit(code):
    _log()
    _exit(code)


os._exit = _logged_exit
'''
# (kind, a substring of the process's command line), the first match wins
KINDS = (("Beam SDK worker", "sdk_worker_main"), ("flow run in a Prefect worker", "prefect/engine.py"),
         ("Prefect server", "server start"), ("Prefect worker", "worker start"), ("prefect CLI", "bin/prefect"),
         ("nas command", "flows/cli"), ("nas command", "bin/nas"), ("Dask", "distributed"), ("moto", "moto"),
         ("pytest's controller", "pytest/__main__"))


def kind(argv: list[str]) -> str:
    line = " ".join(argv)
    found = next((name for name, mark in KINDS if mark in line), None)
    return found or ("python -c (xdist workers, scenario scripts)" if argv[:1] == ["-c"] else "other")


def main() -> None:
    args = sys.argv[1:] or ["-q", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider"]
    with tempfile.TemporaryDirectory(prefix="suite-cpu-") as folder:
        (Path(folder) / "sitecustomize.py").write_text(HOOK)
        log = Path(folder) / "log.jsonl"
        env = {**os.environ, "NAS_SUITE_CPU_LOG": str(log),
               "PYTHONPATH": os.pathsep.join(filter(None, [folder, str(REPO), os.environ.get("PYTHONPATH")]))}
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=REPO, env=env)
        wall = time.monotonic() - started
        rows = [json.loads(line) for line in log.read_text().splitlines()]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    kinds, tests = defaultdict(lambda: [0, 0.0]), defaultdict(float)
    for row in rows:
        tally = kinds[kind(row["argv"])]
        tally[0] += 1
        tally[1] += row["cpu"]
        if row["test"]:
            tests[row["test"].split(" ")[0]] += row["cpu"]
    logged = sum(row["cpu"] for row in rows)
    by_kind = [{"kind": k, "processes": n, "cpu_s": round(c, 1)} for k, (n, c) in
               sorted(kinds.items(), key=lambda item: -item[1][1])]
    by_kind.append({"kind": "not logged (killed, or ended without exit handlers)", "processes": None,
                    "cpu_s": round(total - logged, 1)})
    save("suite_cpu", {"exit_code": done.returncode, "wall_s": round(wall), "cpu_s": round(total),
                       "by_kind": by_kind,
                       "by_test": [{"test": t, "cpu_s": round(c, 1)}
                                   for t, c in sorted(tests.items(), key=lambda item: -item[1])[:25]]})
    for row in by_kind:
        print(f"{row['cpu_s']:8.1f} s  {row['processes'] or '':>4}  {row['kind']}")
    print(f"{total:.0f} s of CPU in {wall / 60:.1f} minutes (exit code {done.returncode})")


if __name__ == "__main__":
    main()

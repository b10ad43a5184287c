"""Where the suite's CPU goes: `make test`'s command with every Python process it starts
(commands, flow runs in workers, Beam and Dask workers, servers) adding its own CPU seconds
to a log as it exits, then summed by kind of process and by test.

    .venv/bin/python benchmarks/suite_cpu.py [--against COMMIT [--rounds 3]] [pytest arguments]

The pytest arguments default to `make test`'s. With `--against`, the suite of COMMIT's tree
(a git worktree on this tree's installs, with its own console scripts) runs too, the trees
alternating, and the results add each tree's runs and medians of wall and CPU time, and
their ratios: the suite before and after a change, on the same machine in the same hours.

A `sitecustomize` on PYTHONPATH registers the hook in each process (and in `os._exit`,
which Prefect's worker processes end with). Processes killed by a signal (the scenarios'
SIGKILLs, and whatever is stopped without its exit handlers) write nothing, and neither do
programs that are not Python (JACK, Chromium): those are read from /proc twice a second
while they run, so their figure is a lower bound (by up to half a second's CPU each). What
neither saw is the suite's total, from the kernel, less both. A test's figure is what it
started plus what its own process (an xdist worker) spent in it, timed by a pytest plugin.
The hook also times each process's first import of the heavy packages (IMPORTED), each less
the others it imported: what the processes paid before any of them did its work.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import threading
import time
import tomllib
from collections import defaultdict
from pathlib import Path

from prepare_vs_ddsp import medians, reference_tree
from record import save

REPO = Path(__file__).resolve().parents[1]
HOOK = '''
import atexit, json, os, sys
_log_path = os.environ["NAS_SUITE_CPU_LOG"]
_imports = {}  # package: CPU seconds its first import took, less the timed packages it imported


def _cpu():
    times = os.times()
    return times.user + times.system


class _TimedImports:
    """On sys.meta_path: times each package of IMPORTED the first time it loads."""

    def __init__(self):
        self.nested = [0.0]

    def find_spec(self, name, path=None, target=None):
        if name not in IMPORTED or name in _imports:
            return None
        import importlib.util

        sys.meta_path.remove(self)  # the spec of the finders after this one
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def timed(module):
            self.nested.append(0.0)
            started = _cpu()
            try:
                run(module)
            finally:
                spent = _cpu() - started
                _imports[name] = round(spent - self.nested.pop(), 2)
                self.nested[-1] += spent

        spec.loader.exec_module = timed
        return spec


sys.meta_path.insert(0, _TimedImports())


def _log():
    with open(_log_path, "a") as log:  # one short line per process: appends do not interleave
        start = open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]
        log.write(json.dumps({"pid": [os.getpid(), start], "argv": sys.argv[:8], "cpu": _cpu(),
                              "imports": _imports, "test": os.environ.get("PYTEST_CURRENT_TEST", "")}) + "\\n")


atexit.register(_log)
_exit = os._exit


def _logged_exit(code):
    _log()
    _exit(code)


os._exit = _logged_exit
'''
# The stacks whose first import each process times: what a process pays before its work.
IMPORTED = ("tensorflow", "tensorflow_probability", "ddsp", "prefect", "apache_beam", "wandb", "distributed",
            "matplotlib", "onnxruntime", "torch")
# A pytest plugin (-p): the CPU each test takes in the process that runs it (an xdist
# worker's in-process work, which no command line tells apart), beside what it starts.
PLUGIN = '''
import json, os
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before = os.times()
    yield
    after = os.times()
    with open(os.environ["NAS_SUITE_CPU_LOG"], "a") as log:
        log.write(json.dumps({"in_test": item.nodeid, "cpu": after.user + after.system - before.user - before.system})
                  + "\\n")
'''
# (kind, a substring of the process's command line), the first match wins
KINDS = (("Beam SDK worker", "sdk_worker_main"), ("flow run in a Prefect worker", "prefect/engine.py"),
         ("Prefect server", "server start"), ("Prefect server", "uvicorn"), ("Prefect worker", "worker start"),
         ("prefect CLI", "bin/prefect"),
         ("nas command", "flows/cli"), ("nas command", "bin/nas"), ("Dask", "distributed"), ("moto", "moto"),
         ("pytest's controller", "pytest/__main__"))


def kind(argv: list[str]) -> str:
    line = " ".join(argv)
    found = next((name for name, mark in KINDS if mark in line), None)
    if found:
        return found
    if "-c" in argv[:2]:  # `-c`, or xdist's `-u -c`
        return "python -c (xdist workers, scenario scripts)"
    return f"other: {Path(argv[0]).name}" if argv else "other"


class Sampler(threading.Thread):
    """The CPU seconds of every process that carries `mark` in its environment, read from
    /proc until stopped: {pid: {"argv", "cpu", "test"}}, each at its last reading."""

    def __init__(self, mark: str):
        super().__init__(daemon=True)
        self.mark, self.seen, self.others, self.done = mark.encode(), {}, set(), threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        while not self.done.wait(0.5):
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    self.read(entry)

    def read(self, proc: Path) -> None:
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            key = (int(proc.name), stat[19])  # the pid and its start time: pids are reused
            cpu = (int(stat[11]) + int(stat[12])) / self.tick  # utime, stime
            if key in self.others:
                return
            if key not in self.seen:
                environ = (proc / "environ").read_bytes().split(b"\0")
                if self.mark not in environ:
                    self.others.add(key)
                    return
                test = next((v for v in environ if v.startswith(b"PYTEST_CURRENT_TEST=")), b"=").split(b"=", 1)[1]
                argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")[:9]
                if Path(argv[0]).name.startswith("python"):  # as the hook's sys.argv
                    argv = argv[1:]
                self.seen[key] = {"pid": list(key), "argv": argv, "test": test.decode(errors="replace")}
            self.seen[key]["cpu"] = cpu
        except (OSError, IndexError, ValueError):  # it ended between the listing and the read
            pass


def run_suite(tree: Path, pytest_args: list[str]) -> dict:
    """One run of the suite of the checkout `tree`: its exit code, wall and CPU seconds, the
    processes' log lines and the processes that only the sampler saw."""
    with tempfile.TemporaryDirectory(prefix="suite-cpu-") as folder:
        (Path(folder) / "sitecustomize.py").write_text(f"IMPORTED = {IMPORTED!r}\n{HOOK}")
        (Path(folder) / "suite_cpu_plugin.py").write_text(PLUGIN)
        log = Path(folder) / "log.jsonl"
        env = {**os.environ, "NAS_SUITE_CPU_LOG": str(log),
               "PYTHONPATH": os.pathsep.join(filter(None, [folder, str(tree), os.environ.get("PYTHONPATH")]))}
        sampler = Sampler(f"NAS_SUITE_CPU_LOG={log}")
        sampler.start()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        done = subprocess.run([str(tree / ".venv" / "bin" / "python"), "-m", "pytest", "-p", "suite_cpu_plugin",
                               *pytest_args], cwd=tree, env=env)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        sampler.done.set()
        sampler.join()
        lines = [json.loads(line) for line in log.read_text().splitlines()]
    total = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"exit_code": done.returncode, "wall": wall, "total": total, "lines": lines, "seen": sampler.seen}


def breakdown(run: dict) -> dict:
    """A run's CPU by kind of process, by first import and by test (the 30 that cost most)."""
    rows, in_tests = [], defaultdict(float)  # in_tests: each test's own process's CPU, part of its worker's row
    for row in run["lines"]:
        if "in_test" in row:
            in_tests[row["in_test"]] += row["cpu"]
        else:
            rows.append(row)
    logged = {tuple(row["pid"]) for row in rows}
    read = [p for p in run["seen"].values() if tuple(p["pid"]) not in logged]
    kinds, tests, imports = defaultdict(lambda: [0, 0.0]), defaultdict(float), defaultdict(lambda: [0, 0.0])
    for row in rows:
        for package, cpu in row["imports"].items():
            imports[package][0] += 1
            imports[package][1] += cpu
    for row, how in [*((r, "") for r in rows), *((r, " (read from /proc)") for r in read)]:
        tally = kinds[kind(row["argv"]) + how]
        tally[0] += 1
        tally[1] += row["cpu"]
        if row["test"]:
            tests[row["test"].split(" ")[0]] += row["cpu"]
    totals = {t: tests.get(t, 0) + in_tests.get(t, 0) for t in {*tests, *in_tests}}  # what it started, and its own
    by_kind = [{"kind": k, "processes": n, "cpu_s": round(c, 1)} for k, (n, c) in
               sorted(kinds.items(), key=lambda item: -item[1][1])]
    # negative when processes that outlived their parent were read (the kernel's total leaves them out)
    by_kind.append({"kind": "seen by neither", "processes": None,
                    "cpu_s": round(run["total"] - sum(r["cpu"] for r in [*rows, *read]), 1)})
    return {"exit_code": run["exit_code"], "wall_s": round(run["wall"]), "cpu_s": round(run["total"]),
            "by_kind": by_kind,
            # a lower bound: the processes read from /proc imported too
            "first_imports": [{"package": p, "processes": n, "cpu_s": round(c, 1)} for p, (n, c) in
                              sorted(imports.items(), key=lambda item: -item[1][1])],
            "by_test": [{"test": t, "cpu_s": round(c, 1), "in_process_s": round(in_tests.get(t, 0), 1)}
                        for t, c in sorted(totals.items(), key=lambda item: -item[1])[:30]]}


def venv_for(tree: Path) -> None:
    """The reference tree's `.venv`: ours (its packages and Prefect template, links), with the
    tree's own console scripts, which name the modules of its code (`nas` moved once)."""
    ours = REPO / ".venv"
    (tree / ".venv" / "bin").mkdir(parents=True)
    scripts = tomllib.loads((tree / "pyproject.toml").read_text())["project"].get("scripts", {})
    for entry in ours.iterdir():
        if entry.name != "bin":
            (tree / ".venv" / entry.name).symlink_to(entry)
    for entry in (ours / "bin").iterdir():
        if entry.name not in scripts:
            (tree / ".venv" / "bin" / entry.name).symlink_to(entry)
    for name, target in scripts.items():
        module, function = target.split(":")
        script = tree / ".venv" / "bin" / name
        script.write_text(f"#!{tree / '.venv' / 'bin' / 'python'}\nimport sys\nfrom {module} import {function}\n"
                          f"sys.exit({function}())\n")
        script.chmod(0o755)
    if (REPO / ".venv-neutone").exists():
        (tree / ".venv-neutone").symlink_to(REPO / ".venv-neutone")


def main() -> None:
    parser = argparse.ArgumentParser(description="Where the suite's CPU goes (the module's docstring).")
    parser.add_argument("--against", metavar="COMMIT", help="also run COMMIT's suite, the trees alternating")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tree with --against")
    args, pytest_args = parser.parse_known_args()
    pytest_args = pytest_args or ["-q", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider"]
    if not args.against:
        figures = breakdown(run_suite(REPO, pytest_args))
    else:
        reference = f"@{args.against}"
        runs: dict[str, list[dict]] = {"this tree": [], reference: []}
        with tempfile.TemporaryDirectory(prefix="nas-reference-") as work, \
                reference_tree(args.against, Path(work) / "reference") as tree:
            venv_for(tree)
            for repeat in range(args.rounds):
                for name, root in (("this tree", REPO), (reference, tree)):
                    run = run_suite(root, pytest_args)
                    runs[name].append({"exit_code": run["exit_code"], "wall_s": round(run["wall"]),
                                       "cpu_s": round(run["total"])})
                    print(f"[{repeat + 1}/{args.rounds}] {name}: {run['total']:.0f} s of CPU in "
                          f"{run['wall'] / 60:.1f} minutes (exit code {run['exit_code']})", flush=True)
                    if name == "this tree":
                        figures = breakdown(run)  # this tree's last run, in detail
        sides = medians(runs, ("wall_s", "cpu_s"))
        figures["against"] = [{"tree": name, **{f"{f}_runs": [r[f] for r in results]
                                                for f in ("exit_code", "wall_s", "cpu_s")}, **sides[name]}
                              for name, results in runs.items()]
        figures["cpu_ratio"] = round(sides["this tree"]["cpu_s"] / sides[reference]["cpu_s"], 3)
        figures["wall_ratio"] = round(sides["this tree"]["wall_s"] / sides[reference]["wall_s"], 3)
    save("suite_cpu", figures)
    for row in figures["by_kind"]:
        print(f"{row['cpu_s']:8.1f} s  {row['processes'] or '':>4}  {row['kind']}")
    for row in figures["first_imports"]:
        print(f"{row['cpu_s']:8.1f} s  {row['processes']:>4}  importing {row['package']}")
    print(f"{figures['cpu_s']} s of CPU in {figures['wall_s'] / 60:.1f} minutes (exit code {figures['exit_code']})")
    for row in figures.get("against", []):
        print(f"{row['tree']}: medians {row['cpu_s']:.0f} s of CPU, {row['wall_s'] / 60:.1f} minutes")


if __name__ == "__main__":
    main()

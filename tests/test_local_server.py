"""The Prefect server of a `nas` command when none is configured: a cold first start on a
loaded machine succeeds, later commands reuse it, and a server that cannot start is one
plain line and exit code 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, write_config


def _cli(*args, env, cores: set[int] | None = None):
    """`cores`: the only CPUs the command (and whatever it starts) may run on."""
    return subprocess.run([sys.executable, "-m", "flows.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900,
                          preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)


def _one_core() -> set[int]:
    """As on a machine whose other cores are busy, without spending CPU on keeping them busy."""
    return {min(os.sched_getaffinity(0))}


def _bare_env(home) -> dict:
    """No server configured, and a Prefect home that may be empty (no database yet)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    return {**env, "PREFECT_HOME": str(home)}


def _cold(env: dict) -> dict:
    """No bytecode either: none is read (an empty cache prefix hides what `make install`
    compiled) and none is written. For the first command only (and the server it starts):
    each Python process that imports TensorFlow this way spends ~15 s more compiling."""
    prefix = Path(env["PREFECT_HOME"]).parent / "no-bytecode"
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(prefix)}


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _flow_runs_with_heartbeats(api: str) -> set[str]:
    events = _post(f"{api}/events/filter", {"filter": {"event": {"prefix": ["prefect.flow-run.heartbeat"]}},
                                            "limit": 50})["events"]
    return {e["resource"]["prefect.resource.id"].removeprefix("prefect.flow-run.") for e in events}


@pytest.mark.slow
def test_first_command_starts_a_server_that_the_next_one_reuses(small_sources, tmp_path):
    home = tmp_path / "prefect-home"
    env = _bare_env(home)
    config = write_config(small_sources / "server.yaml", audio=["audio/c-vorbis.ogg"], eval_fraction=0.0)
    try:
        first = _cli("prepare", config, "--data-root", tmp_path / "data", env=_cold(env), cores=_one_core())
        assert first.returncode == 0, first.stderr[-3000:]
        assert first.stderr.count("starting a local Prefect server") == 1
        assert "Traceback" not in first.stderr
        status = _cli("server", "status", env=env)
        assert "local Prefect server: http://127.0.0.1:" in status.stdout
        again = _cli("prepare", config, "--data-root", tmp_path / "data", env=env)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "starting a local Prefect server" not in again.stderr  # reused
        assert again.stdout == first.stdout  # the same dataset folder

        # Commands send no flow-run heartbeats (each flow run would wait up to 1 s for the
        # thread at its end), unless the user sets their frequency: that run's heartbeat shows.
        asked = _cli("prepare", config, "--data-root", tmp_path / "data",
                     env={**env, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "60"})
        assert asked.returncode == 0, asked.stderr[-3000:]
        api = status.stdout.split("local Prefect server: ")[1].split()[0] + "/api"
        runs = _post(f"{api}/flow_runs/filter", {"sort": "START_TIME_DESC"})
        assert len(runs) == 3 and all(r["state_type"] == "COMPLETED" for r in runs)
        deadline = time.monotonic() + 60
        while not _flow_runs_with_heartbeats(api) and time.monotonic() < deadline:
            time.sleep(1)  # the server stores events a moment after they arrive
        assert _flow_runs_with_heartbeats(api) == {runs[0]["id"]}
    finally:
        # from another process than the one that started it: where pid 1 reaps no orphans, the
        # server's zombies remain, and a stop that counted them waited 30 s, then sent SIGKILL
        started = time.monotonic()
        stopped = _cli("server", "stop", env=env)
        took = time.monotonic() - started
    assert "stopped the local Prefect server" in stopped.stdout
    assert took < 10, f"the stop took {took:.0f} s"
    assert "no local Prefect server runs" in _cli("server", "status", env=env).stdout


def test_a_server_that_cannot_start_is_one_line_and_exit_code_1(small_sources, tmp_path):
    home = tmp_path / "prefect-home"
    env = {**_bare_env(home), "NAS_SERVER_STARTUP_SECONDS": "0.5"}
    config = write_config(small_sources / "no-server.yaml")
    done = _cli("prepare", config, "--data-root", tmp_path / "data", env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    error = [line for line in done.stderr.splitlines() if "did not start" in line]
    assert len(error) == 1 and str(home / "nas-server.log") in error[0], done.stderr
    assert not (tmp_path / "data").exists()
    assert "no local Prefect server runs" in _cli("server", "status", env=env).stdout

"""A real `prefect server start` on a free loopback port: started and stopped around the
tests and benchmarks that need one (`local_server`), or started once for the CLI and
reused by its later commands (`shared_server`) when no Prefect server is configured."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from nas.atomic import file_lock
from nas.store.artifacts import Frozen

PREFECT = Path(sys.executable).with_name("prefect")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise TimeoutError(f"the server exited with code {process.returncode} before {url} answered")
        if answers(url):
            return
        time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {seconds:g} s")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group (server and its children), SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _server_env(home: Path, api: str) -> dict:
    return {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api, "PREFECT_UI_API_URL": api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "2"}


def _start(home: Path, port: int, env: dict, log) -> subprocess.Popen:
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


@dataclass
class LocalServer:
    """A `prefect server start` of one's own: `env` is os.environ pointed at it
    (PREFECT_API_URL, PREFECT_HOME), for subprocesses such as workers, `prefect deploy` and
    `nas`; its process leads a session of its own."""

    url: str
    env: dict
    home: Path
    log: IO
    startup_seconds: float
    process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> None:
        self.process = _start(self.home, int(self.url.rsplit(":", 1)[1]), self.env, self.log)
        wait_for(f"{self.url}/api/health", self.startup_seconds, self.process)

    def restart(self, down_s: float = 0.0) -> None:
        """Stops it, waits `down_s` and starts it again on the same port and database."""
        stop(self.process)
        time.sleep(down_s)
        self.start()


@contextmanager
def local_server(home: Path, startup_seconds: float = 180) -> Iterator[LocalServer]:
    """A new server on a free port, with its database and log (`server.log`) in `home`;
    stopped at the end."""
    url = f"http://127.0.0.1:{free_port()}"
    home.mkdir(parents=True, exist_ok=True)
    with (home / "server.log").open("w") as log:
        server = LocalServer(url, _server_env(home, f"{url}/api"), home, log, startup_seconds)
        try:
            server.start()
            yield server
        finally:
            if server.process:
                stop(server.process)


class ServerStartError(RuntimeError):
    """The shared server did not come up; the message says why and where its log is."""


SHARED_STATE = "nas-server.json"
SHARED_LOG = "nas-server.log"


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def _locked(home: Path):
    """One command at a time starts or stops the shared server."""
    return file_lock(home / ".nas-server.lock")


class SharedServer(Frozen):
    """`nas-server.json`: the shared server that a `nas` command started."""

    api: str
    pid: int
    log: str


def shared_state(home: Path) -> SharedServer | None:
    try:
        return SharedServer.model_validate_json((home / SHARED_STATE).read_text())
    except (OSError, ValueError):
        return None


def shared_server(home: Path, startup_seconds: float, announce=print) -> str:
    """The API URL of the local server that `nas` commands share under PREFECT_HOME `home`:
    the one a previous command started if it still answers, else a new one, started
    detached (it outlives this command; `stop_shared_server` ends it). A fresh install's
    first start builds and migrates the database, which takes a minute on a busy machine."""
    with _locked(home):
        state = shared_state(home)
        if state and answers(f"{state.api}/health"):
            return state.api
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        log_path = home / SHARED_LOG
        announce(f"starting a local Prefect server for this and later nas commands on http://127.0.0.1:{port} "
                 f"(a first start can take a minute; log: {log_path})")
        with log_path.open("w") as log:
            process = _start(home, port, _server_env(home, api), log)
        try:
            wait_for(f"{api}/health", startup_seconds, process)
        except TimeoutError as error:
            stop(process)
            raise ServerStartError(f"the Prefect server did not start: {error}; see {log_path}") from None
        (home / SHARED_STATE).write_text(SharedServer(api=api, pid=process.pid, log=str(log_path)).model_dump_json())
        return api


def stop_shared_server(home: Path) -> str | None:
    """Stops the shared server if one runs; returns its API URL."""
    with _locked(home):
        state = shared_state(home)
        (home / SHARED_STATE).unlink(missing_ok=True)
        if not state or not answers(f"{state.api}/health"):  # gone (its pid may be another's now)
            return None
        try:
            os.killpg(state.pid, signal.SIGTERM)
        except ProcessLookupError:
            return None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(state.pid):
            time.sleep(0.2)
        if _alive(state.pid):
            os.killpg(state.pid, signal.SIGKILL)
        return state.api


def _alive(group: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: one this process
    started is reaped here, and an init that reaps no orphans (some containers' pid 1)
    leaves the others of a server that another process started."""
    try:
        os.waitpid(group, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    if not Path("/proc/self/stat").exists():  # no /proc to tell zombies apart
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # after the command's name: state, parent, process group
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):  # it ended as it was read
            continue
        if int(pgrp) == group and state != "Z":
            return True
    return False

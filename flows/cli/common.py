"""What the commands share: the common flags, the one way a user's error ends a command
(`nas: ...` and exit 2), and the Prefect server their flow runs report to."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import yaml

from nas import constants
from nas.config import ConfigError, find_audio

DEFAULT_DATA_ROOT = os.environ.get("NAS_DATA_ROOT", constants.DEFAULT_DATA_ROOT)
SERVER_STARTUP_S = 600  # a fresh install's first server start on a busy 2-core machine, with room
CONFIG_HELP = "dataset config (YAML), e.g. dataset_configs/demo-violin.yaml"


class UserError(Exception):
    """Input the command cannot take: `main` prints `nas: <message>` and exits 2."""


@contextmanager
def refusing(*errors: type[BaseException]):
    """Errors of these types raised inside are the user's: they end the command as a UserError."""
    try:
        yield
    except errors as error:
        raise UserError(str(error)) from None


def add_data_root(command, help: str) -> None:
    command.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help=help)


def add_config(command) -> None:
    command.add_argument("config", help=CONFIG_HELP)


def parse_overrides(items: list[str], parse: bool = True) -> dict:
    """KEY=VALUE items, their values read as YAML (`parse`) or kept as text."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = yaml.safe_load(value) if parse else value
    return overrides


def listed(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def check_audio(path: str, config, base) -> None:
    """The config's audio can be found; the error names the config."""
    try:
        find_audio(config, base)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _command_line_settings() -> dict:
    """Prefect settings for flow runs started here, with someone watching the console: no
    flow-run heartbeats unless the user set their frequency. Heartbeats only feed a
    zombie-run automation, which is for unattended runs (deployments keep Prefect's
    default), and each flow run waits up to 1 s for its heartbeat thread to wake and stop:
    2-4 s of a cached `nas run`'s five flow runs (benchmarks/cached_rerun.py)."""
    from prefect.settings import get_current_settings

    if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
        return {}
    return {"flows.heartbeat_frequency": None}


@contextmanager
def prefect_server():
    """The Prefect server this command's flow runs report to (`_api`), with the command
    line's settings."""
    from prefect.settings import temporary_settings

    with temporary_settings(_command_line_settings()), _api() as ready:
        yield ready


@contextmanager
def _api():
    """Flow runs go to the configured Prefect server, else to the local one that nas
    commands share (started on first use), so runs are kept and a later command does not
    wait for a new server. Yields False, having said why, if that server cannot start."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield True
        return
    from flows.cli.local_server import ServerStartError, prefect_home, shared_server

    try:
        api = shared_server(prefect_home(), float(os.environ.get("NAS_SERVER_STARTUP_SECONDS", SERVER_STARTUP_S)),
                            announce=lambda line: print(f"nas: {line}", file=sys.stderr, flush=True))
    except ServerStartError as error:
        print(f"nas: {error}", file=sys.stderr)
        yield False
        return
    os.environ["PREFECT_API_URL"] = api  # subprocesses (Beam, Dask workers) report there too
    with temporary_settings({PREFECT_API_URL: api}):
        yield True


def ui_hint() -> str:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    from flows.cli.local_server import prefect_home, shared_state

    shared = shared_state(prefect_home())
    local = shared and shared.api == PREFECT_API_URL.value()
    return (f"{PREFECT_UI_URL.value() or PREFECT_API_URL.value().removesuffix('/api')} "
            f"(flow runs; artifacts pipeline-, dataset-, model-, evaluation-<dataset>)"
            f"{'; the local server nas started, `nas server stop` ends it' if local else ''}")

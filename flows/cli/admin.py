"""Looking after the house: the datasets' status, registering a new dataset, and the local
Prefect server."""

from __future__ import annotations

from pathlib import Path

from flows.cli.common import add_data_root, parse_overrides, refusing
from nas.config import ConfigError
from nas.locations import is_url, resolve_root


def add_commands(commands) -> None:
    status = commands.add_parser("status", help="datasets with their latest dataset, model and evaluation")
    add_data_root(status, "where datasets and runs are")
    status.set_defaults(run=_status)
    register = commands.add_parser(
        "register", help="a new dataset: write dataset_configs/NAME.yaml, add its pipeline deployment, "
        "and emit the Prefect event that starts its pipeline")
    register.add_argument("audio_dir", help="folder of the instrument's recordings (searched recursively)")
    register.add_argument("--name", required=True, help="dataset name, e.g. cello (lower case, digits, . _ -)")
    register.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                          help="a config setting, e.g. --set crepe.capacity=tiny --set training.steps=2000")
    register.add_argument("--configs-dir", default="dataset_configs", help="where dataset configs live")
    register.add_argument("--prefect-yaml", default="prefect.yaml",
                          help="deployments file to add pipeline-NAME to ('' to leave it alone)")
    add_data_root(register, "where the pipeline writes")
    register.add_argument("--force", action="store_true", help="replace an existing config of that name")
    register.set_defaults(run=_register)
    server = commands.add_parser("server", help="the local Prefect server that nas commands start and share when "
                                 "no server is configured (PREFECT_API_URL)")
    server.add_argument("action", choices=["status", "stop"])
    server.set_defaults(run=_server)


def _status(args) -> int:
    from nas.status import dataset_status

    rows = dataset_status(resolve_root(args.data_root))
    if not rows:
        print(f"no prepared datasets under {args.data_root}")
        return 0
    header = ("dataset", "dataset_version", "model_version", "recipe", "eval_id", "spectral_loss", "f0_mae_cents",
              "loudness_mae_db", "regression")
    cells = [[_format(row[k]) for k in header] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    for line in [list(header), *cells]:
        print("  ".join(value.ljust(width) for value, width in zip(line, widths)).rstrip())
    return 0


def _format(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _as_seen_from_here(path: Path) -> str:
    """Relative to the working directory (the repo, where workers run too) when inside it."""
    path = path.absolute()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _register(args) -> int:
    from flows.deployments import add_pipeline_deployment
    from nas.registration import register_dataset

    with refusing(ConfigError, ValueError):
        path = register_dataset(args.audio_dir, args.name, Path(args.configs_dir),
                                parse_overrides(args.settings), args.force)
    data_root = args.data_root if is_url(args.data_root) else _as_seen_from_here(Path(args.data_root))
    config_path = _as_seen_from_here(path)
    print(f"wrote {path}")
    if args.prefect_yaml and not Path(args.prefect_yaml).is_file():
        print(f"{args.prefect_yaml} not found: no pipeline-{args.name} deployment added")
    elif args.prefect_yaml:
        with refusing(ConfigError):
            if add_pipeline_deployment(Path(args.prefect_yaml), args.name, config_path, data_root):
                print(f"added deployment pipeline-{args.name} to {args.prefect_yaml} (apply: prefect deploy --all)")
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        print(f"no Prefect server set (PREFECT_API_URL): no event sent; run it now with `nas run {config_path}`")
        return 0
    from flows.events import DATASET_REGISTERED, announce_dataset

    event_id = announce_dataset(args.name, config_path, data_root)
    print(f"emitted {DATASET_REGISTERED} for nas.dataset.{args.name} (event {event_id}); "
          f"the pipeline-on-register deployment runs it")
    return 0


def _server(args) -> int:
    from flows.cli.local_server import answers, prefect_home, shared_state, stop_shared_server

    if args.action == "stop":
        api = stop_shared_server(prefect_home())
        print(f"stopped the local Prefect server at {api}" if api else "no local Prefect server runs")
        return 0
    state = shared_state(prefect_home())
    if state and answers(f"{state.api}/health"):
        print(f"local Prefect server: {state.api.removesuffix('/api')} (log: {state.log})")
    else:
        print("no local Prefect server runs; the next nas command that runs a flow starts one")
    return 0

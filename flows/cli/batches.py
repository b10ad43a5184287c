"""Many runs at once: several datasets (run-many), or one dataset's sweep of models and recipes."""

from __future__ import annotations

import yaml
from pydantic import ValidationError

from flows.cli.common import add_config, add_data_root, check_audio, listed, parse_overrides, prefect_server, refusing
from nas import sweep as s
from nas.config import ConfigError, load_config
from nas.config.presets import PRESETS, RECIPES, resolve_training
from nas.export.runtimes import RUNTIMES
from nas.locations import check_reachable, resolve_root


def add_commands(commands) -> None:
    many = commands.add_parser("run-many", help="several datasets at once, each as its own task; on a Dask "
                               "cluster with --dask-workers or --dask-address")
    many.add_argument("configs", nargs="+", help="dataset configs (YAML)")
    many.add_argument("--until", choices=["prepare", "export"], default="export",
                      help="prepare only, or the whole pipeline (default)")
    many.add_argument("--dask-workers", type=int, default=0, help="a local Dask cluster of this many processes")
    many.add_argument("--dask-address", help="an existing Dask scheduler, e.g. tcp://scheduler:8786")
    add_data_root(many, "where datasets and runs are written")
    many.set_defaults(run=_run_many)
    sweep = commands.add_parser("sweep", help="compare models and recipes on one dataset: train, evaluate, export and "
                                "benchmark every point; summary table, quality-speed frontier, learning curves")
    add_config(sweep)
    sweep.add_argument("--preset", type=listed, help=f"presets, comma-separated ({', '.join(PRESETS)}; default: the "
                       "config's)")
    sweep.add_argument("--recipe", type=listed, help=f"recipes, comma-separated ({', '.join(RECIPES)}; default: the "
                       "config's)")
    sweep.add_argument("--steps", type=int, help="training steps of every point (default: the config's)")
    sweep.add_argument("--seeds", type=int, default=1, help="seeds 0 .. N-1 of every setting (default 1)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=V1,V2",
                       help="a setting to sweep, e.g. --set model.channels=8,16,32 (repeatable: every combination)")
    sweep.add_argument("--name", help="the sweep's name (default: the dataset's); its card is sweep-NAME")
    sweep.add_argument("--runtimes", type=listed, help="runtimes to benchmark (default: all of "
                       f"{', '.join(RUNTIMES)})")
    sweep.add_argument("--runtime-seconds", type=float, default=10.0, help="measuring time per point (default 10)")
    sweep.add_argument("--dask-workers", type=int, default=2, help="a local Dask cluster of up to this many "
                       "processes, each training one point at a time, one per point left to train (default 2; with "
                       "one left, it trains in the command's own process)")
    sweep.add_argument("--dask-address", help="an existing Dask scheduler instead, e.g. tcp://scheduler:8786")
    sweep.add_argument("--train-deployment", help="send each point's training to this deployment, e.g. "
                       "train/train-gpu")
    add_data_root(sweep, "where datasets, runs and sweeps are written")
    sweep.set_defaults(run=_sweep)


def _run_many(args) -> int:
    with refusing(ConfigError):
        for path in args.configs:
            config, base = load_config(path)
            check_audio(path, config, base)
    from flows.many import dask_runner, datasets

    flow = datasets
    if args.dask_address or args.dask_workers:
        flow = datasets.with_options(task_runner=dask_runner(args.dask_address, args.dask_workers))
    with prefect_server() as ready:
        if not ready:
            return 1
        results = flow(args.configs, args.data_root, args.until)
    for path, result in results.items():
        print(f"{path}: {result.get('dataset_dir') or 'FAILED: ' + result['error']}")
    return 1 if any("error" in r for r in results.values()) else 0


def _check_points(config, args, grid: dict) -> None:
    """ValueError naming the first point whose settings are no training (a key that does not
    exist, a value of the wrong type), before any point starts: the sweep's own usage error,
    where a point that fails while it runs is reported and the others go on."""
    for point in s.config_points(config.training, args.preset, args.recipe, args.steps, 1, grid):
        try:
            resolve_training(config.training, point.training())
        except ValidationError as error:
            problem = error.errors()[0]
            raise ValueError(f"--set: point {point.label}: "
                             f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}") from None
        except ValueError as error:
            raise ValueError(f"--set: point {point.label}: {error}") from None


def _sweep(args) -> int:
    with refusing(ConfigError, ValueError):
        check_reachable(resolve_root(args.data_root))
        config, base = load_config(args.config)
        check_audio(args.config, config, base)
        grid = {key: [yaml.safe_load(v) for v in listed(values)]
                for key, values in parse_overrides(args.overrides, parse=False).items()}
        for name, known, given in (("preset", PRESETS, args.preset), ("recipe", RECIPES, args.recipe),
                                   ("runtime", RUNTIMES, args.runtimes)):
            if unknown := [g for g in given or [] if g not in known]:
                raise ValueError(f"--{name}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
        if args.seeds < 1:
            raise ValueError(f"--seeds {args.seeds}: at least 1")
        _check_points(config, args, grid)
    from flows.sweep import sweep

    with prefect_server() as ready:
        if not ready:
            return 1
        result = sweep(args.config, args.data_root, args.preset, args.recipe, args.steps, args.seeds, grid, args.name,
                       args.train_deployment, args.runtimes, args.runtime_seconds, config.model_dump(mode="json"),
                       args.dask_address, args.dask_workers)
    failed = [r for r in result.points if not r.done]
    print(f"sweep {result.name}: {len(result.points) - len(failed)} of {len(result.points)} points done; "
          f"{result.dir}/report.md" + "".join(f"\n  {r.point.label}: {r.status}" for r in failed))
    return 1 if failed else 0

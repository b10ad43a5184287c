"""The `nas` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import yaml
from pydantic import ValidationError

from nas.config import ConfigError, load_config
from nas.models.presets import PRESETS, resolve_training

DEFAULT_DATA_ROOT = os.environ.get("NAS_DATA_ROOT", "nas-data")


def _quiet_libraries() -> None:
    # The temporary Prefect server's telemetry writes race its own SQLite start-up.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "nas")  # progress lines reach the Prefect UI
    for name in ("apache_beam", "absl", "tensorflow", "h5py", "matplotlib", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _parse_overrides(items: list[str]) -> dict:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nas", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="prepare a dataset: features, TFRecords, statistics, W&B")
    prepare.add_argument("config", help="dataset config (YAML), e.g. dataset_configs/demo-violin.yaml")
    prepare.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where datasets are written")
    train = commands.add_parser("train", help="train a model on the dataset a config prepares")
    train.add_argument("config", help="dataset config (YAML)")
    train.add_argument("--preset", choices=list(PRESETS), help="model preset (default: the config's training.preset)")
    train.add_argument("--steps", type=int, help="train until this step (default: the config's training.steps)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a setting of the preset, e.g. --set optim.learning_rate=1e-3 (repeatable)")
    train.add_argument("--dataset-version", help="a published dataset version (default: prepare the config now)")
    train.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where datasets and runs are written")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    _quiet_libraries()
    try:  # config errors are reported before any flow starts
        config, _ = load_config(args.config)
        if args.command == "train":
            overrides = _parse_overrides(args.overrides)
            resolve_training(config.training, args.preset, args.steps, overrides)
    except (ConfigError, ValueError, ValidationError) as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2
    if args.command == "prepare":
        from flows.prepare import prepare as prepare_flow

        print(prepare_flow(args.config, args.data_root))
    elif args.command == "train":
        from flows.train import train as train_flow

        summary = train_flow(args.config, args.preset, args.steps, overrides, args.dataset_version, args.data_root)
        final = summary["final"]
        print(f"model {summary['model_version']}: {summary['run_dir']}/model "
              f"(eval spectral loss {final['initial_eval_loss']:.3f} at step 0 -> {final['eval_loss']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `nas` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from nas.config import ConfigError, load_config

DEFAULT_DATA_ROOT = os.environ.get("NAS_DATA_ROOT", "nas-data")


def _quiet_libraries() -> None:
    # The temporary Prefect server's telemetry writes race its own SQLite start-up.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    for name in ("apache_beam", "absl", "tensorflow", "h5py", "matplotlib", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nas", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="prepare a dataset: features, TFRecords, statistics, W&B")
    prepare.add_argument("config", help="dataset config (YAML), e.g. dataset_configs/demo-violin.yaml")
    prepare.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where datasets are written")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    _quiet_libraries()
    try:
        if args.command == "prepare":
            load_config(args.config)  # config errors are reported before any flow starts
            from flows.prepare import prepare as prepare_flow

            print(prepare_flow(args.config, args.data_root))
    except ConfigError as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

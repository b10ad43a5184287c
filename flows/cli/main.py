"""The `nas` command line."""

from __future__ import annotations

import argparse
import sys

from flows.cli import admin, batches, console, playing, stages
from flows.cli.common import UserError

COMMANDS = (stages, batches, playing, admin)  # each adds its commands, which set `run`


def build_parser() -> argparse.ArgumentParser:
    """Every command and flag (the docs' CLI reference is generated from it)."""
    parser = argparse.ArgumentParser(prog="nas", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print what TensorFlow, Beam and the other libraries log (or NAS_LOG_LEVEL=DEBUG)")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.configure(console.verbose_requested(args.verbose))
    try:
        return args.run(args)
    except UserError as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2


EXIT_STACKS_AFTER_S = 120


def command() -> int:
    """The `nas` command: `main`, then the process exits. Should the exit hang (a library's
    thread or exit handler waiting on something), every thread's stack goes to stderr after
    EXIT_STACKS_AFTER_S, so that the hang names its place instead of looking like slow work."""
    code = main()
    import faulthandler

    faulthandler.dump_traceback_later(EXIT_STACKS_AFTER_S, file=sys.stderr)
    return code
